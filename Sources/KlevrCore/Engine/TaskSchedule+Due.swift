extension TaskSchedule {
    /// The most missed occurrences counted for ``DueOccurrences/missed``; beyond it the count stops.
    public static let missedCountLimit = 10_000

    /// Which occurrences are due at `now`, given what was done before: the scheduler's one decision.
    ///
    /// The due occurrences are those in `(progress.cursor, min(now, until)]`. Of them:
    /// - the catch-up policy picks what runs: `none` only the latest, and only if it is at most
    ///   ``RecurringSchedule/onTimeTolerance`` late; `latest` the latest; `all(limit:)` the latest `limit`;
    /// - overlap `skip` runs nothing while a run is still active, and otherwise at most one occurrence (the latest
    ///   picked), since several at once would overlap each other; `queue` runs all picked occurrences;
    /// - `maxOccurrences` cuts the picked ones, oldest first, to what is left.
    ///
    /// A `runAt` schedule fires its one instant once `now` reaches it, however late, also when the instant was
    /// already past when the task was created (`deliverWithin` is what stops a late run); only `firedCount`
    /// says whether it fired. The function is pure: the same inputs give the same answer, and `cursor` moves to
    /// the latest due occurrence, so storing it with the runs makes the scheduler restart-safe.
    public func due(_ progress: ScheduleProgress, now: Int64) -> DueOccurrences {
        switch self {
        case .runAt(let instant):
            if progress.firedCount > 0 {
                return DueOccurrences(fire: [], missed: 0, skippedForOverlap: 0, cursor: progress.cursor, next: nil, finished: true)
            }
            if now >= instant {
                return DueOccurrences(fire: [instant], missed: 0, skippedForOverlap: 0, cursor: max(progress.cursor, instant), next: nil, finished: true)
            }
            return DueOccurrences(fire: [], missed: 0, skippedForOverlap: 0, cursor: progress.cursor, next: instant, finished: false)
        case .recurring(let schedule):
            return schedule.due(progress, now: now)
        }
    }
}

extension RecurringSchedule {
    /// See ``TaskSchedule/due(_:now:)``.
    public func due(_ progress: ScheduleProgress, now: Int64) -> DueOccurrences {
        let remaining = maxOccurrences.map { max(0, $0 - progress.firedCount) } ?? Int.max
        let upper = until.map { min($0, now) } ?? now
        var fire: [Int64] = []
        var skipped = 0
        var cursor = progress.cursor
        var dueCount = 0
        if remaining > 0, upper > progress.cursor {
            let wanted: Int
            switch catchUp {
            case .none, .latest: wanted = 1
            case .all(let limit): wanted = limit
            }
            let latest = latestOccurrences(after: progress.cursor, through: upper, count: wanted)
            if let newest = latest.last {
                cursor = newest
                dueCount = cron.nextFireTimes(after: progress.cursor, count: TaskSchedule.missedCountLimit, until: upper).count
                switch catchUp {
                case .none: fire = now - newest <= Self.onTimeTolerance ? [newest] : []
                case .latest, .all: fire = latest
                }
                if overlap == .skip, !fire.isEmpty {
                    if progress.previousRunActive {
                        skipped = fire.count
                        fire = []
                    } else if let last = fire.last, fire.count > 1 {
                        skipped = fire.count - 1
                        fire = [last]
                    }
                }
                fire = Array(fire.prefix(remaining))
            }
        }
        let fired = progress.firedCount + fire.count
        let exhausted = maxOccurrences.map { fired >= $0 } ?? false
        let next = exhausted ? nil : cron.nextFireTimes(after: max(cursor, now), count: 1, until: until).first
        return DueOccurrences(
            fire: fire, missed: max(0, dueCount - fire.count - skipped), skippedForOverlap: skipped, cursor: cursor,
            next: next, finished: next == nil)
    }

    /// The latest `count` occurrences in `(lower, upper]`, ascending, found by looking back from `upper` over a
    /// window that grows eightfold until it holds enough of them or reaches `lower`, so that a long downtime
    /// of a frequent schedule costs no more than a short one.
    func latestOccurrences(after lower: Int64, through upper: Int64, count: Int) -> [Int64] {
        var window: Int64 = 3_600_000
        while true {
            let start = upper - window > lower ? upper - window : lower
            var found: [Int64] = []
            var from = start
            while true {
                let batch = cron.nextFireTimes(after: from, count: 1_000, until: upper)
                found.append(contentsOf: batch)
                if found.count > count { found.removeFirst(found.count - count) }
                guard batch.count == 1_000, let last = batch.last else { break }
                from = last
            }
            if found.count >= count || start == lower { return found }
            window = window > Int64.max / 16 ? Int64.max / 2 : window * 8
        }
    }
}
