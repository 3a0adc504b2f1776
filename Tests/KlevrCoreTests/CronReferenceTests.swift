import Foundation
import KlevrCore
import Testing

/// Random cron expressions checked against a brute-force reference around DST transitions, including
/// Australia/Lord_Howe's half-hour shifts.
///
/// The reference walks every UTC minute, reads the local wall-clock minute from the zone's offset, and applies
/// the documented rule directly: a local minute fires the first time it is shown; local minutes skipped by a
/// jump forward fire at the first minute after the jump. Matching uses Foundation's calendar and the value sets
/// the expression was generated from, not the engine's parser.
@Suite struct CronReferenceTests {
    struct Window: Sendable, CustomStringConvertible {
        var zone: String
        var start: String
        var description: String { "\(zone) from \(start)" }
    }

    static let windows = [
        Window(zone: "Europe/Berlin", start: "2026-03-28T12:00Z"), Window(zone: "Europe/Berlin", start: "2026-10-24T12:00Z"),
        Window(zone: "America/New_York", start: "2026-03-07T12:00Z"), Window(zone: "America/New_York", start: "2026-10-31T12:00Z"),
        // Lord Howe moves by 30 minutes: 2026-04-04T15:00Z back, 2026-10-03T15:30Z forward.
        Window(zone: "Australia/Lord_Howe", start: "2026-04-03T12:00Z"), Window(zone: "Australia/Lord_Howe", start: "2026-10-02T12:00Z"),
    ]

    struct Expression {
        var text: String
        var minutes: Set<Int>
        var hours: Set<Int>
        var weekdays: Set<Int>
    }

    static func randomExpression(using generator: inout SplitMix64) -> Expression {
        func pick(_ candidates: [Int], _ range: ClosedRange<Int>, upTo count: Int) -> Set<Int> {
            var values = Set<Int>()
            for _ in 0..<Int.random(in: 1...count, using: &generator) {
                values.insert(Bool.random(using: &generator) ? candidates.randomElement(using: &generator) ?? 0 : Int.random(in: range, using: &generator))
            }
            return values
        }
        let minutes = pick([0, 15, 30, 45], 0...59, upTo: 4)
        let hours = Int.random(in: 0..<3, using: &generator) == 0 ? Set(0...23) : pick([0, 1, 2, 3], 0...23, upTo: 4)
        let weekdays = Int.random(in: 0..<3, using: &generator) == 0 ? pick([0, 6], 0...6, upTo: 3) : Set(0...6)
        func list(_ values: Set<Int>, all: Int) -> String {
            values.count == all ? "*" : values.sorted().map(String.init).joined(separator: ",")
        }
        return Expression(
            text: "\(list(minutes, all: 60)) \(list(hours, all: 24)) * * \(list(weekdays, all: 7))", minutes: minutes, hours: hours,
            weekdays: weekdays)
    }

    static func reference(_ expression: Expression, zone: TimeZone, after: Int64, through: Int64) -> [Int64] {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC") ?? utc.timeZone
        func matches(localMinute: Int64) -> Bool {
            let parts = utc.dateComponents([.hour, .minute, .weekday], from: Date(timeIntervalSince1970: Double(localMinute * 60)))
            guard let hour = parts.hour, let minute = parts.minute, let weekday = parts.weekday else { return false }
            return expression.minutes.contains(minute) && expression.hours.contains(hour) && expression.weekdays.contains(weekday - 1)
        }
        var fired: [Int64] = []
        var seen = Set<Int64>()
        var latestShown: Int64?
        var second = after / 1000 - 86_400
        while second <= through / 1000 {
            let local = (second + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(second))))) / 60
            var fires = !seen.contains(local) && matches(localMinute: local)
            if let latest = latestShown, local > latest + 1 {
                fires = fires || (latest + 1..<local).contains { matches(localMinute: $0) }
            }
            seen.insert(local)
            latestShown = max(latestShown ?? local, local)
            if fires, second * 1000 > after { fired.append(second * 1000) }
            second += 60
        }
        return fired
    }

    @Test(arguments: windows)
    func randomExpressionsMatchTheReference(window: Window) throws {
        var generator = SplitMix64(seed: window.description.utf8.reduce(UInt64(7)) { $0 &* 31 &+ UInt64($1) })
        let start = utcMillis(window.start)
        let end = start + 2 * 86_400_000
        guard let zone = TimeZone(identifier: window.zone) else {
            Issue.record("no zone \(window.zone)")
            return
        }
        for _ in 0..<15 {
            let expression = Self.randomExpression(using: &generator)
            let schedule = try CronSchedule(expression: expression.text, timeZone: window.zone)
            let engine = schedule.nextFireTimes(after: start, count: 10_000, until: end)
            #expect(engine == Self.reference(expression, zone: zone, after: start, through: end), "\(expression.text) in \(window)")
        }
    }

    @Test func lordHoweHalfHourShifts() throws {
        // 2026-10-04 02:00 LHST (+10:30) → 02:30 LHDT (+11): 02:15 does not exist and fires at 02:30 (15:30Z).
        let spring = try CronSchedule(expression: "15 2 * * *", timeZone: "Australia/Lord_Howe")
        #expect(spring.nextFireTime(after: utcMillis("2026-10-03T12:00Z")) == utcMillis("2026-10-03T15:30Z"))
        // 2026-04-05 02:00 LHDT (+11) → 01:30 LHST (+10:30): 01:45 occurs twice and fires at the first (14:45Z).
        let autumn = try CronSchedule(expression: "45 1 * * *", timeZone: "Australia/Lord_Howe")
        #expect(autumn.nextFireTimes(after: utcMillis("2026-04-04T12:00Z"), count: 2)
            == [utcMillis("2026-04-04T14:45Z"), utcMillis("2026-04-05T15:15Z")])
    }
}
