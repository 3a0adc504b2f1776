/// When a task runs: once at a time, or on a cron schedule. (A task without a schedule runs now.)
public enum TaskSchedule: Sendable, Hashable {
    /// One occurrence at the given instant (epoch ms); the run is `scheduled` until then.
    case runAt(Int64)
    /// A cron schedule with its bounds and policies.
    case recurring(RecurringSchedule)
}

/// What to do when an occurrence is due while a run of an earlier occurrence is still active.
public enum OverlapPolicy: String, Sendable, Hashable, CaseIterable {
    /// Do not run the occurrence (it is recorded as skipped).
    case skip
    /// Create its run anyway; it waits in the queue until the earlier run ends.
    case queue
}

/// What to do with occurrences that fell due while the manager was down (or the task was paused).
public enum CatchUpPolicy: Sendable, Hashable {
    /// Run nothing that is late: only an occurrence at most ``RecurringSchedule/onTimeTolerance`` old fires.
    case none
    /// Run the most recent missed occurrence once.
    case latest
    /// Run the most recent `limit` missed occurrences, oldest first (at most ``maximumLimit``).
    case all(limit: Int)

    /// The largest `limit` of ``all(limit:)``.
    public static let maximumLimit = 100
}

/// Why a schedule was refused.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The schedule field that is wrong (`maxOccurrences`, `until`, `catchUp`).
    public var field: String
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// For example `maxOccurrences: must be at least 1`.
    public var description: String { "\(field): \(message)" }
}

/// A cron schedule with its bounds (`until`, `maxOccurrences`) and policies (overlap, catch-up).
public struct RecurringSchedule: Sendable, Hashable {
    /// How late an occurrence may be and still count as on time rather than missed: a scheduler that wakes a
    /// little after the minute is not "catching up".
    public static let onTimeTolerance: Int64 = 60_000

    /// The expression and its zone.
    public var cron: CronSchedule
    /// No occurrence after this instant (epoch ms, inclusive) fires.
    public var until: Int64?
    /// At most this many occurrences fire in total.
    public var maxOccurrences: Int?
    /// What an occurrence does while an earlier run is active.
    public var overlap: OverlapPolicy
    /// What happens to occurrences missed during downtime.
    public var catchUp: CatchUpPolicy

    /// A validated schedule.
    /// - Throws: ``ScheduleError`` for `maxOccurrences` below 1 or a catch-up limit outside 1…``CatchUpPolicy/maximumLimit``.
    public init(
        cron: CronSchedule, until: Int64? = nil, maxOccurrences: Int? = nil, overlap: OverlapPolicy = .skip,
        catchUp: CatchUpPolicy = .none
    ) throws(ScheduleError) {
        if let maxOccurrences, maxOccurrences < 1 {
            throw ScheduleError(field: "maxOccurrences", message: "must be at least 1, got \(maxOccurrences)")
        }
        if case .all(let limit) = catchUp, !(1...CatchUpPolicy.maximumLimit).contains(limit) {
            throw ScheduleError(field: "catchUp", message: "the limit must be between 1 and \(CatchUpPolicy.maximumLimit), got \(limit)")
        }
        self.cron = cron
        self.until = until
        self.maxOccurrences = maxOccurrences
        self.overlap = overlap
        self.catchUp = catchUp
    }
}

/// Where a task's schedule stands, as the scheduler stores it.
public struct ScheduleProgress: Sendable, Hashable {
    /// The latest occurrence already dealt with (fired or skipped), or the instant the schedule started (the
    /// task's creation or resume) when none was. Only occurrences after it can be due.
    public var cursor: Int64
    /// How many occurrences have fired so far (for `maxOccurrences`).
    public var firedCount: Int
    /// Whether a run of an earlier occurrence is still active (not in a terminal status).
    public var previousRunActive: Bool

    /// Creates a progress value.
    public init(cursor: Int64, firedCount: Int = 0, previousRunActive: Bool = false) {
        self.cursor = cursor
        self.firedCount = firedCount
        self.previousRunActive = previousRunActive
    }
}

/// What the scheduler must do for one task now.
public struct DueOccurrences: Sendable, Hashable {
    /// Occurrences to create runs for now (their scheduled instants, ascending).
    public var fire: [Int64]
    /// Due occurrences dropped by the catch-up policy or because `maxOccurrences` was reached (counted up to
    /// ``TaskSchedule/missedCountLimit``).
    public var missed: Int
    /// Due occurrences not run because a run was still active (overlap policy `skip`).
    public var skippedForOverlap: Int
    /// The new ``ScheduleProgress/cursor``: store it in the same transaction as the runs, so that a restart
    /// neither repeats nor loses an occurrence.
    public var cursor: Int64
    /// The next occurrence after now, to wake up for; nil when the schedule is finished.
    public var next: Int64?
    /// Nothing will ever be due again: `until` passed, `maxOccurrences` reached, or no further match.
    public var finished: Bool

    /// Creates a decision.
    public init(fire: [Int64], missed: Int, skippedForOverlap: Int, cursor: Int64, next: Int64?, finished: Bool) {
        self.fire = fire
        self.missed = missed
        self.skippedForOverlap = skippedForOverlap
        self.cursor = cursor
        self.next = next
        self.finished = finished
    }
}
