import KlevrCore
import Testing

@Suite struct ScheduleDueTests {
    static let hour: Int64 = 3_600_000
    /// 10:00 UTC, an occurrence of the hourly schedule.
    static let ten = utcMillis("2026-05-01T10:00Z")

    static func at(_ hours: Int64, plus millis: Int64 = 0) -> Int64 { ten + hours * hour + millis }

    static func hourly(
        until: Int64? = nil, maxOccurrences: Int? = nil, overlap: OverlapPolicy = .queue, catchUp: CatchUpPolicy = .none
    ) throws -> RecurringSchedule {
        try RecurringSchedule(
            cron: CronSchedule(expression: "0 * * * *", timeZone: "UTC"), until: until, maxOccurrences: maxOccurrences,
            overlap: overlap, catchUp: catchUp)
    }

    @Test func onTimeOccurrenceFires() throws {
        let due = try Self.hourly().due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(1, plus: 500))
        #expect(due == DueOccurrences(fire: [Self.at(1)], missed: 0, skippedForOverlap: 0, cursor: Self.at(1), next: Self.at(2), finished: false))
    }

    @Test func nothingBeforeTheNextOccurrence() throws {
        let due = try Self.hourly().due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(0, plus: 30 * 60_000))
        #expect(due == DueOccurrences(fire: [], missed: 0, skippedForOverlap: 0, cursor: Self.at(0), next: Self.at(1), finished: false))
    }

    /// After downtime from 10:00 to 15:30: five occurrences (11:00 … 15:00) are due, the latest 30 minutes late.
    @Test(arguments: [
        (CatchUpPolicy.none, OverlapPolicy.queue, [Int64](), 5, 0),
        (.latest, .queue, [5], 4, 0),
        (.all(limit: 3), .queue, [3, 4, 5], 2, 0),
        (.all(limit: 10), .queue, [1, 2, 3, 4, 5], 0, 0),
        (.all(limit: 3), .skip, [5], 2, 2),
        (.latest, .skip, [5], 4, 0),
    ])
    func catchUpAfterDowntime(catchUp: CatchUpPolicy, overlap: OverlapPolicy, fired: [Int64], missed: Int, skipped: Int) throws {
        let due = try Self.hourly(overlap: overlap, catchUp: catchUp).due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(5, plus: 30 * 60_000))
        #expect(due.fire == fired.map { Self.at($0) })
        #expect(due.missed == missed)
        #expect(due.skippedForOverlap == skipped)
        #expect(due.cursor == Self.at(5))
        #expect(due.next == Self.at(6))
        #expect(!due.finished)
    }

    @Test func noCatchUpStillFiresAnOccurrenceWithinTheTolerance() throws {
        let due = try Self.hourly(catchUp: .none).due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(5, plus: 59_000))
        #expect(due.fire == [Self.at(5)])
        #expect(due.missed == 4)
    }

    @Test(arguments: [(OverlapPolicy.skip, true, 0, 1), (.skip, false, 1, 0), (.queue, true, 1, 0)])
    func overlap(policy: OverlapPolicy, previousRunActive: Bool, fired: Int, skipped: Int) throws {
        let due = try Self.hourly(overlap: policy).due(
            ScheduleProgress(cursor: Self.at(0), firedCount: 1, previousRunActive: previousRunActive), now: Self.at(1))
        #expect(due.fire.count == fired)
        #expect(due.skippedForOverlap == skipped)
        #expect(due.cursor == Self.at(1))
        #expect(due.missed == 0)
    }

    @Test func maxOccurrencesCutsOldestFirstAndFinishes() throws {
        let schedule = try Self.hourly(maxOccurrences: 3, catchUp: .all(limit: 10))
        let due = schedule.due(ScheduleProgress(cursor: Self.at(0), firedCount: 2), now: Self.at(5))
        #expect(due.fire == [Self.at(1)])
        #expect(due.missed == 4)
        #expect(due.next == nil)
        #expect(due.finished)
        let after = schedule.due(ScheduleProgress(cursor: due.cursor, firedCount: 3), now: Self.at(9))
        #expect(after.fire.isEmpty && after.finished && after.next == nil)
    }

    @Test func untilEndsTheSchedule() throws {
        let schedule = try Self.hourly(until: Self.at(2, plus: 30 * 60_000), catchUp: .all(limit: 10))
        let late = schedule.due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(5))
        #expect(late.fire == [Self.at(1), Self.at(2)])
        #expect(late.next == nil && late.finished)
        let early = schedule.due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(1))
        #expect(early.fire == [Self.at(1)])
        #expect(early.next == Self.at(2) && !early.finished)
        // An occurrence exactly at `until` fires (the bound is inclusive).
        let inclusive = try Self.hourly(until: Self.at(2)).due(ScheduleProgress(cursor: Self.at(1)), now: Self.at(2))
        #expect(inclusive.fire == [Self.at(2)] && inclusive.finished)
    }

    @Test func aScheduleThatNeverMatchesIsFinished() throws {
        let schedule = try RecurringSchedule(cron: CronSchedule(expression: "0 0 30 2 *", timeZone: "UTC"))
        let due = schedule.due(ScheduleProgress(cursor: Self.at(0)), now: Self.at(1))
        #expect(due.fire.isEmpty && due.next == nil && due.finished)
    }

    @Test func runAt() {
        let schedule = TaskSchedule.runAt(Self.at(3))
        let created = ScheduleProgress(cursor: Self.at(0))
        #expect(schedule.due(created, now: Self.at(2)) == DueOccurrences(
            fire: [], missed: 0, skippedForOverlap: 0, cursor: Self.at(0), next: Self.at(3), finished: false))
        #expect(schedule.due(created, now: Self.at(3)).fire == [Self.at(3)])
        // Late (the manager was down): it still fires once; deliverWithin is what expires a late run.
        let late = schedule.due(created, now: Self.at(48))
        #expect(late.fire == [Self.at(3)] && late.finished && late.cursor == Self.at(3))
        #expect(schedule.due(ScheduleProgress(cursor: late.cursor, firedCount: 1), now: Self.at(49)).fire.isEmpty)
        // Created a moment after its time (the cursor, the creation instant, is past it): it fires once all the same.
        let pastAtCreation = schedule.due(ScheduleProgress(cursor: Self.at(3, plus: 1_000)), now: Self.at(3, plus: 1_500))
        #expect(pastAtCreation.fire == [Self.at(3)] && pastAtCreation.finished)
    }

    /// A scheduler that wakes at each `next` (a little late), sometimes twice, and restarts from its stored
    /// progress fires every occurrence of two days exactly once.
    @Test func aSchedulerDrivenByTheDecisionFiresEachOccurrenceOnce() throws {
        let schedule = try Self.hourly(overlap: .skip)
        var progress = ScheduleProgress(cursor: Self.at(0, plus: -1))
        var fired: [Int64] = []
        var now = Self.at(0)
        for tick in 0..<200 {
            let due = schedule.due(progress, now: now)
            fired += due.fire
            // Stored with the runs; the run of each occurrence ends before the next one.
            progress = ScheduleProgress(cursor: due.cursor, firedCount: progress.firedCount + due.fire.count)
            guard let next = due.next, next <= Self.at(47) else { break }
            // Every third tick the scheduler wakes twice (a restart, a spurious wake-up) before the occurrence.
            now = tick % 3 == 0 ? now + 1_000 : next + 800
        }
        #expect(fired == (0...47).map { Self.at($0) })
        #expect(progress.firedCount == 48)
    }

    @Test func aLongDowntimeIsCheapAndCountsMissedUpToTheLimit() throws {
        let everyMinute = try RecurringSchedule(cron: CronSchedule(expression: "* * * * *", timeZone: "Europe/Berlin"), catchUp: .latest)
        let due = everyMinute.due(ScheduleProgress(cursor: Self.at(-24 * 365)), now: Self.at(0, plus: 10_000))
        #expect(due.fire == [Self.at(0)])
        #expect(due.missed == TaskSchedule.missedCountLimit - 1)
        #expect(due.next == Self.at(0, plus: 60_000))
    }

    @Test func invalidSchedulesAreRefused() throws {
        let cron = try CronSchedule(expression: "* * * * *", timeZone: "UTC")
        #expect(throws: ScheduleError(field: "maxOccurrences", message: "must be at least 1, got 0")) {
            try RecurringSchedule(cron: cron, maxOccurrences: 0)
        }
        for limit in [0, CatchUpPolicy.maximumLimit + 1] {
            #expect(throws: ScheduleError.self) { try RecurringSchedule(cron: cron, catchUp: .all(limit: limit)) }
        }
        _ = try RecurringSchedule(cron: cron, catchUp: .all(limit: CatchUpPolicy.maximumLimit))
    }
}
