import Foundation
import KlevrCore
import Testing

/// Epoch milliseconds of a UTC time written `2026-03-29T01:00Z`, computed with Foundation's Gregorian calendar
/// (independently of the engine's own calendar arithmetic).
func utcMillis(_ text: String) -> Int64 {
    let parts = text.dropLast().split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
    let components = DateComponents(year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4])
    guard let date = calendar.date(from: components) else { return -1 }
    return Int64(date.timeIntervalSince1970) * 1000
}

@Suite struct CronScheduleTests {
    struct Case: Sendable, CustomStringConvertible {
        var expression: String
        var zone: String
        var after: String
        var expected: [String]
        var description: String { "\(expression) in \(zone) after \(after)" }
    }

    /// Expected times were worked out by hand and checked with a brute-force minute-by-minute walk over
    /// Python's zoneinfo (first occurrence of a repeated local time, first instant after a gap).
    static let cases: [Case] = [
        // Plain UTC.
        Case(expression: "*/15 * * * *", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2026-01-01T00:15Z", "2026-01-01T00:30Z", "2026-01-01T00:45Z", "2026-01-01T01:00Z"]),
        Case(expression: "10-40/10 8 * * *", zone: "UTC", after: "2026-01-01T08:10Z",
            expected: ["2026-01-01T08:20Z", "2026-01-01T08:30Z", "2026-01-01T08:40Z", "2026-01-02T08:10Z"]),
        Case(expression: "5/20 * * * *", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2026-01-01T00:05Z", "2026-01-01T00:25Z", "2026-01-01T00:45Z", "2026-01-01T01:05Z"]),
        // 2026-01-02 is a Friday.
        Case(expression: "0 9 * * mon-FRI", zone: "UTC", after: "2026-01-02T09:00Z",
            expected: ["2026-01-05T09:00Z", "2026-01-06T09:00Z"]),
        Case(expression: "0 12 * * 7", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2026-01-04T12:00Z", "2026-01-11T12:00Z"]),
        Case(expression: "0 12 * * 0", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2026-01-04T12:00Z", "2026-01-11T12:00Z"]),
        Case(expression: "0 12 * * FRI-7", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2026-01-02T12:00Z", "2026-01-03T12:00Z", "2026-01-04T12:00Z", "2026-01-09T12:00Z"]),
        // Vixie: both day fields restricted, either matches (the 1st, and Mondays: 2026-06-01 is a Monday).
        Case(expression: "0 0 1 * MON", zone: "UTC", after: "2026-05-20T00:00Z",
            expected: ["2026-05-25T00:00Z", "2026-06-01T00:00Z", "2026-06-08T00:00Z"]),
        // One field starting with `*` (also `*/2`): both must match. Odd days that are Mondays (not 2026-06-08).
        Case(expression: "0 0 */2 * MON", zone: "UTC", after: "2026-05-20T00:00Z",
            expected: ["2026-05-25T00:00Z", "2026-06-01T00:00Z", "2026-06-15T00:00Z"]),
        Case(expression: "0 0 * JAN,jul *", zone: "UTC", after: "2026-01-30T00:00Z",
            expected: ["2026-01-31T00:00Z", "2026-07-01T00:00Z"]),
        Case(expression: "0 0 29 2 *", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2028-02-29T00:00Z", "2032-02-29T00:00Z"]),
        Case(expression: "0 0 30 2 *", zone: "UTC", after: "2026-01-01T00:00Z", expected: []),
        Case(expression: "0 0 31 4,6,9,11 *", zone: "UTC", after: "2026-01-01T00:00Z", expected: []),
        Case(expression: "@daily", zone: "UTC", after: "2026-01-01T00:00Z",
            expected: ["2026-01-02T00:00Z", "2026-01-03T00:00Z"]),
        Case(expression: "@hourly", zone: "Asia/Kolkata", after: "2026-01-01T00:00Z",
            expected: ["2026-01-01T00:30Z", "2026-01-01T01:30Z"]),
        Case(expression: "59 23 31 12 *", zone: "UTC", after: "2026-06-01T00:00Z",
            expected: ["2026-12-31T23:59Z", "2027-12-31T23:59Z"]),

        // Europe/Berlin, spring forward 2026-03-29 02:00 CET → 03:00 CEST (01:00Z).
        Case(expression: "30 2 * * *", zone: "Europe/Berlin", after: "2026-03-28T00:00Z",
            expected: ["2026-03-28T01:30Z", "2026-03-29T01:00Z", "2026-03-30T00:30Z"]),
        Case(expression: "*/15 2 * * *", zone: "Europe/Berlin", after: "2026-03-29T00:00Z",
            expected: ["2026-03-29T01:00Z", "2026-03-30T00:00Z"]),
        Case(expression: "0,30 2,3 * * *", zone: "Europe/Berlin", after: "2026-03-29T00:00Z",
            expected: ["2026-03-29T01:00Z", "2026-03-29T01:30Z", "2026-03-30T00:00Z"]),
        // Europe/Berlin, fall back 2026-10-25 03:00 CEST → 02:00 CET (01:00Z).
        Case(expression: "30 2 * * *", zone: "Europe/Berlin", after: "2026-10-24T12:00Z",
            expected: ["2026-10-25T00:30Z", "2026-10-26T01:30Z"]),
        Case(expression: "*/30 * * * *", zone: "Europe/Berlin", after: "2026-10-24T23:45Z",
            expected: ["2026-10-25T00:00Z", "2026-10-25T00:30Z", "2026-10-25T02:00Z", "2026-10-25T02:30Z", "2026-10-25T03:00Z"]),
        // Asked from inside the repeated hour's second pass: 02:45 already fired at its first occurrence.
        Case(expression: "45 2 * * *", zone: "Europe/Berlin", after: "2026-10-25T01:10Z",
            expected: ["2026-10-26T01:45Z"]),

        // America/New_York, spring forward 2026-03-08 02:00 EST → 03:00 EDT (07:00Z).
        Case(expression: "30 2 * * *", zone: "America/New_York", after: "2026-03-07T12:00Z",
            expected: ["2026-03-08T07:00Z", "2026-03-09T06:30Z"]),
        Case(expression: "0 * * * *", zone: "America/New_York", after: "2026-03-08T05:30Z",
            expected: ["2026-03-08T06:00Z", "2026-03-08T07:00Z", "2026-03-08T08:00Z", "2026-03-08T09:00Z"]),
        // America/New_York, fall back 2026-11-01 02:00 EDT → 01:00 EST (06:00Z).
        Case(expression: "30 1 * * *", zone: "America/New_York", after: "2026-10-31T12:00Z",
            expected: ["2026-11-01T05:30Z", "2026-11-02T06:30Z"]),
        Case(expression: "0 * * * *", zone: "America/New_York", after: "2026-11-01T04:30Z",
            expected: ["2026-11-01T05:00Z", "2026-11-01T07:00Z", "2026-11-01T08:00Z", "2026-11-01T09:00Z"]),
    ]

    @Test(arguments: cases)
    func nextFireTimes(_ testCase: Case) throws {
        let schedule = try CronSchedule(expression: testCase.expression, timeZone: testCase.zone)
        let times = schedule.nextFireTimes(after: utcMillis(testCase.after), count: max(testCase.expected.count, 1))
        #expect(times == testCase.expected.map(utcMillis))
    }

    @Test func firesAreIndependentOfWhereTheSearchStarts() throws {
        // Walking one occurrence at a time through both Berlin transitions gives the same list as one search.
        for (expression, start) in [("*/10 * * * *", "2026-10-24T22:00Z"), ("*/10 * * * *", "2026-03-28T22:00Z")] {
            let schedule = try CronSchedule(expression: expression, timeZone: "Europe/Berlin")
            let all = schedule.nextFireTimes(after: utcMillis(start), count: 40)
            var stepped: [Int64] = []
            var cursor = utcMillis(start)
            while stepped.count < 40, let next = schedule.nextFireTime(after: cursor) {
                stepped.append(next)
                cursor = next
            }
            #expect(stepped == all)
            #expect(zip(all, all.dropFirst()).allSatisfy { $0 < $1 })
        }
    }

    @Test func untilIsAnInclusiveBound() throws {
        let schedule = try CronSchedule(expression: "0 * * * *", timeZone: "UTC")
        let times = schedule.nextFireTimes(after: utcMillis("2026-01-01T00:00Z"), count: 100, until: utcMillis("2026-01-01T03:00Z"))
        #expect(times == ["2026-01-01T01:00Z", "2026-01-01T02:00Z", "2026-01-01T03:00Z"].map(utcMillis))
    }

    @Test func anExpressionThatNeverMatchesEndsTheSearch() throws {
        let schedule = try CronSchedule(expression: "0 0 30 2 *", timeZone: "Europe/Berlin")
        #expect(schedule.nextFireTimes(after: 0, count: 5).isEmpty)
        #expect(schedule.nextFireTime(after: utcMillis("2026-01-01T00:00Z")) == nil)
    }

    @Test func unknownTimeZoneIsAnError() {
        for zone in ["Europe/Berln", "", "Mars/Olympus_Mons"] {
            #expect(throws: CronError.self) { try CronSchedule(expression: "* * * * *", timeZone: zone) }
            do {
                _ = try CronSchedule(expression: "* * * * *", timeZone: zone)
            } catch {
                #expect(error.field == .timeZone)
            }
        }
    }
}
