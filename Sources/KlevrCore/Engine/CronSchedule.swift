import Foundation

/// A cron expression read in an IANA time zone: the instants at which a recurring task fires.
///
/// Times are epoch milliseconds, the project's one time format; fire times are whole minutes.
///
/// **Occurrences are local wall-clock times, and each fires at most once.** Daylight saving time is handled
/// as follows (the rule cronie applies to fixed-time jobs, and what systemd timers do for a time in a gap):
/// - **Gap** (spring forward, e.g. Europe/Berlin 2026-03-29 02:00 → 03:00): a local time that does not exist
///   fires at the first instant after the gap (03:00 CEST). Several skipped times (`*/15 2 * * *`) fire only once
///   there, together with a time at that instant that does exist (`0 3 * * *`): one instant, one occurrence.
/// - **Overlap** (fall back, e.g. Europe/Berlin 2026-10-25 03:00 → 02:00): a local time that occurs twice fires
///   at its first occurrence only (02:30 CEST, not 02:30 CET). So `*/15 * * * *` is silent during the repeated
///   hour's second pass: the same wall-clock minutes do not fire twice.
///
/// The set of fire instants therefore depends on the expression and the zone only, never on where a search
/// starts: a scheduler that restarts and asks again from its last fired occurrence neither repeats nor skips one.
///
/// Searches are bounded: an expression that never matches (`0 0 30 2 *`) yields no times after
/// ``searchHorizonDays`` days without a match, instead of searching forever.
public struct CronSchedule: Sendable, Hashable {
    /// How far past the previous fire time (or the start) a search looks for the next one: five years, so that
    /// February 29 is always found.
    public static let searchHorizonDays = 5 * 366

    /// The expression.
    public let expression: CronExpression
    /// The zone the expression's wall-clock times are read in.
    public let timeZone: TimeZone

    /// Parses an expression and looks up its zone.
    /// - Throws: ``CronError`` for a bad expression, or with field ``CronError/Field/timeZone`` for a zone that
    ///   is not a known IANA identifier.
    public init(expression: String, timeZone identifier: String) throws(CronError) {
        let expression = try CronExpression(expression)
        guard !identifier.isEmpty, identifier.count <= 64, let zone = TimeZone(identifier: identifier) else {
            throw CronError(field: .timeZone, position: 1,
                message: "unknown time zone \"\(identifier)\": expected an IANA name such as Europe/Berlin or UTC")
        }
        self.init(expression: expression, timeZone: zone)
    }

    /// A schedule from a parsed expression and a zone.
    public init(expression: CronExpression, timeZone: TimeZone) {
        self.expression = expression
        self.timeZone = timeZone
    }

    /// The first fire time strictly after `after` (epoch ms), if one exists within the search bound.
    public func nextFireTime(after: Int64) -> Int64? {
        nextFireTimes(after: after, count: 1).first
    }

    /// Up to `count` fire times strictly after `after`, ascending, in epoch milliseconds.
    ///
    /// Fewer are returned when the search bound is reached (``searchHorizonDays`` without a match) or when
    /// the next one would be later than `until` (inclusive bound).
    public func nextFireTimes(after: Int64, count: Int, until: Int64? = nil) -> [Int64] {
        guard count > 0 else { return [] }
        let hours = expression.hourList
        let minutes = expression.minuteList
        var results: [Int64] = []
        results.reserveCapacity(min(count, 1024))
        var last = after
        let afterSecond = CivilCalendar.floorDivide(after, 1000)
        // Start a day early: a local day that began before `after`'s local day can still hold later instants.
        var day = Int(CivilCalendar.floorDivide(afterSecond + offset(at: afterSecond), 86_400)) - 1
        var lastProgressDay = day
        while day - lastProgressDay <= Self.searchHorizonDays {
            let dayStart = Int64(day) * 86_400
            // No local time of this day or later can map to an instant before its start minus two days.
            if let until, (dayStart - 2 * 86_400) * 1000 > until { break }
            let civil = CivilCalendar.day(day)
            if expression.matchesDay(month: civil.month, day: civil.day, weekday: CivilCalendar.weekday(day)) {
                let fixedOffset = uniformOffset(aroundLocalDayStart: dayStart)
                for hour in hours {
                    for minute in minutes {
                        let local = dayStart + Int64(hour * 3600 + minute * 60)
                        let instant = (fixedOffset.map { local - $0 } ?? fireInstant(local: local)) * 1000
                        guard instant > last else { continue }
                        if let until, instant > until { return results }
                        results.append(instant)
                        last = instant
                        lastProgressDay = day
                        if results.count == count { return results }
                    }
                }
            }
            day += 1
        }
        return results
    }

    /// The instant (epoch seconds) at which the local wall-clock time `local` (seconds since 1970-01-01 00:00
    /// local) fires: its only instant, the first of two in an overlap, or the end of the gap it falls into.
    func fireInstant(local: Int64) -> Int64 {
        // Offsets are within ±1 day, so every instant showing `local` lies in (local - 1 day, local + 1 day)
        // and carries one of the offsets seen around it.
        let before = offset(at: local - 86_400)
        let after = offset(at: local + 86_400)
        var earliest: Int64?
        for candidate in [before, offset(at: local), after] where offset(at: local - candidate) == candidate {
            earliest = min(earliest ?? .max, local - candidate)
        }
        if let earliest { return earliest }
        // A gap: the first instant whose offset is no longer the one before the transition.
        var low = local - 86_400
        var high = local + 86_400
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == before { low = middle } else { high = middle }
        }
        return high
    }

    /// The zone's offset when the whole local day starting at `dayStart` (and a day either side) has one
    /// offset, so its times convert by subtraction; nil near a transition.
    private func uniformOffset(aroundLocalDayStart dayStart: Int64) -> Int64? {
        let start = dayStart - 2 * 86_400
        let end = dayStart + 3 * 86_400
        let offsetAtStart = offset(at: start)
        guard offset(at: end) == offsetAtStart else { return nil }
        let startDate = Date(timeIntervalSince1970: Double(start))
        if let transition = timeZone.nextDaylightSavingTimeTransition(after: startDate),
            transition.timeIntervalSince1970 <= Double(end)
        {
            return nil
        }
        return offsetAtStart
    }

    private func offset(at second: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(second))))
    }
}
