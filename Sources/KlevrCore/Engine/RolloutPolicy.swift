/// A rollout limit as written: a count (`3`) or a percentage of the targets (`10%`).
public enum RolloutLimit: Sendable, Hashable, CustomStringConvertible {
    /// An absolute number of runs.
    case count(Int)
    /// A percentage (0–100) of the fan-out's targets.
    case percent(Int)

    /// The largest count accepted.
    public static let maximumCount = 1_000_000

    /// Parses `3` or `10%` (digits only, no sign or spaces).
    /// - Throws: ``RolloutError`` naming `field`.
    public init(parsing text: String, field: String) throws(RolloutError) {
        let isPercent = text.hasSuffix("%")
        let digits = isPercent ? text.dropLast() : Substring(text)
        guard !digits.isEmpty, digits.count <= 7, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits) else {
            throw RolloutError(field: field, message: "expected a count (like 3) or a percentage (like 10%), got \"\(text)\"")
        }
        if isPercent {
            guard number <= 100 else { throw RolloutError(field: field, message: "a percentage is at most 100%, got \(text)") }
            self = .percent(number)
        } else {
            guard number <= Self.maximumCount else {
                throw RolloutError(field: field, message: "a count is at most \(Self.maximumCount), got \(text)")
            }
            self = .count(number)
        }
    }

    /// `3` or `10%`.
    public var description: String {
        switch self {
        case .count(let count): "\(count)"
        case .percent(let percent): "\(percent)%"
        }
    }

    /// The limit as a number of runs for `targets` targets, rounding a percentage up or down.
    func resolved(targets: Int, roundingUp: Bool) -> Int {
        switch self {
        case .count(let count): return count
        case .percent(let percent):
            let product = targets * percent
            return roundingUp ? (product + 99) / 100 : product / 100
        }
    }
}

/// Why a rollout policy was refused.
public struct RolloutError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `maxConcurrency` or `maxErrors`.
    public var field: String
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// For example `maxErrors: expected a count …`.
    public var description: String { "\(field): \(message)" }
}

/// How a fan-out proceeds: how many runs execute at once, and how many errors stop it.
///
/// - `maxConcurrency`: at most this many runs are in flight (dispatched, running or recovering) at once. A percentage is of
///   the targets, rounded **up**, and at least 1 (10% of 15 agents is 2). No limit: all start at once.
/// - `maxErrors`: the rollout stops when the number of runs that ended in error **exceeds** it (`0` stops at the
///   first error; `1` at the second). A percentage is of the targets, rounded **down** (10% of 15 is 1). No limit:
///   errors never stop it. When it stops, runs that have not started end `canceled` with the reason; runs in
///   flight finish normally (they are not killed).
/// - An error is a run that ended `failed` or `timed_out` (and, as they are added, `failed_recover` and
///   `expired`); a `canceled` run is not an error.
public struct RolloutPolicy: Sendable, Hashable {
    /// The concurrency limit, nil for none.
    public var maxConcurrency: RolloutLimit?
    /// The error limit, nil for none.
    public var maxErrors: RolloutLimit?

    /// A policy from parsed limits.
    /// - Throws: ``RolloutError`` for a concurrency of 0 (a count of 0 or 0%).
    public init(maxConcurrency: RolloutLimit? = nil, maxErrors: RolloutLimit? = nil) throws(RolloutError) {
        if maxConcurrency == .count(0) || maxConcurrency == .percent(0) {
            throw RolloutError(field: "maxConcurrency", message: "must allow at least one run at a time")
        }
        self.maxConcurrency = maxConcurrency
        self.maxErrors = maxErrors
    }

    /// A policy from the texts of a task file or an API body (`"2"`, `"10%"`); nil means no limit.
    public init(maxConcurrency: String?, maxErrors: String?) throws(RolloutError) {
        try self.init(
            maxConcurrency: try maxConcurrency.map { text throws(RolloutError) in try RolloutLimit(parsing: text, field: "maxConcurrency") },
            maxErrors: try maxErrors.map { text throws(RolloutError) in try RolloutLimit(parsing: text, field: "maxErrors") })
    }

    /// How many runs may be in flight at once for `targets` targets (`Int.max` without a limit).
    public func concurrencyLimit(targets: Int) -> Int {
        maxConcurrency.map { max(1, $0.resolved(targets: targets, roundingUp: true)) } ?? Int.max
    }

    /// How many errors are tolerated for `targets` targets (nil without a limit).
    public func errorLimit(targets: Int) -> Int? {
        maxErrors.map { $0.resolved(targets: targets, roundingUp: false) }
    }

    /// What the fan-out does next. Pure: call it whenever a run of the fan-out changes.
    public func decide(_ progress: RolloutProgress) -> RolloutDecision {
        guard progress.notStarted > 0 else { return .done }
        if let maxErrors, let limit = errorLimit(targets: progress.targets), progress.errors > limit {
            var allowed = maxErrors.description
            if case .percent = maxErrors { allowed += " (\(limit) of \(progress.targets))" }
            let runs = progress.errors == 1 ? "run" : "runs"
            return .stop(reason: "rollout stopped: \(progress.errors) \(runs) failed, more than maxErrors \(allowed)")
        }
        let free = concurrencyLimit(targets: progress.targets) - progress.inFlight
        return free > 0 ? .start(min(free, progress.notStarted)) : .wait
    }
}

/// Where a fan-out stands: counts of its runs by phase.
public struct RolloutProgress: Sendable, Hashable {
    /// All runs of the fan-out (one per target agent).
    public var targets: Int
    /// Runs not yet handed to an agent (scheduled or queued).
    public var notStarted: Int
    /// Runs handed to an agent and not ended (dispatched, running or recovering).
    public var inFlight: Int
    /// Runs that ended successfully.
    public var succeeded: Int
    /// Runs that ended in error.
    public var errors: Int
    /// Runs that ended canceled.
    public var canceled: Int

    /// Creates a progress value; `targets` is the sum of the phases.
    public init(notStarted: Int = 0, inFlight: Int = 0, succeeded: Int = 0, errors: Int = 0, canceled: Int = 0) {
        self.targets = notStarted + inFlight + succeeded + errors + canceled
        self.notStarted = notStarted
        self.inFlight = inFlight
        self.succeeded = succeeded
        self.errors = errors
        self.canceled = canceled
    }

    /// Counts the statuses of the fan-out's runs. Every status is classified here, so a new status does not
    /// compile until someone decides whether it is an error.
    public init(statuses: some Sequence<RunStatus>) {
        self.init()
        for status in statuses {
            targets += 1
            switch status {
            case .scheduled, .queued: notStarted += 1
            case .dispatched, .running, .recovering: inFlight += 1
            case .succeeded: succeeded += 1
            // A run that expired never ran: the fan-out did not reach that agent, which counts as an error.
            case .failed, .failedRecover, .timedOut, .expired: errors += 1
            case .canceled: canceled += 1
            }
        }
    }
}

/// The next step of a fan-out.
public enum RolloutDecision: Sendable, Hashable {
    /// Start this many of the runs not yet started (in their order).
    case start(Int)
    /// Nothing may start now: the in-flight runs use the concurrency.
    case wait
    /// Too many errors: end every run not yet started `canceled` with this reason.
    case stop(reason: String)
    /// No run is left to start.
    case done
}
