import KlevrCore
import Testing

@Suite struct CronExpressionTests {
    struct Refusal: Sendable, CustomStringConvertible {
        var expression: String
        var field: CronError.Field
        var position: Int
        var messageContains: String
        var description: String { "\"\(expression)\"" }
    }

    static let refusals: [Refusal] = [
        Refusal(expression: "60 * * * *", field: .minute, position: 1, messageContains: "60 is out of range"),
        Refusal(expression: "* 24 * * *", field: .hour, position: 3, messageContains: "24 is out of range"),
        Refusal(expression: "* * 0 * *", field: .dayOfMonth, position: 5, messageContains: "0 is out of range"),
        Refusal(expression: "* * * 13 *", field: .month, position: 7, messageContains: "13 is out of range"),
        Refusal(expression: "* * * * 8", field: .dayOfWeek, position: 9, messageContains: "8 is out of range"),
        Refusal(expression: "* * * * FRX", field: .dayOfWeek, position: 9, messageContains: "unknown weekday name \"FRX\""),
        Refusal(expression: "* * * FOO *", field: .month, position: 7, messageContains: "unknown month name \"FOO\""),
        Refusal(expression: "MON * * * *", field: .minute, position: 1, messageContains: "\"MON\" is not a number"),
        Refusal(expression: "* * * MON *", field: .month, position: 7, messageContains: "unknown month name"),
        Refusal(expression: "*/0 * * * *", field: .minute, position: 3, messageContains: "the step 0 is not between 1 and 60"),
        Refusal(expression: "*/61 * * * *", field: .minute, position: 3, messageContains: "the step 61"),
        Refusal(expression: "* * * * */8", field: .dayOfWeek, position: 11, messageContains: "not between 1 and 7"),
        Refusal(expression: "*/ * * * *", field: .minute, position: 2, messageContains: "expected a step"),
        Refusal(expression: "5-1 * * * *", field: .minute, position: 3, messageContains: "runs backwards"),
        Refusal(expression: "* * * * SAT-SUN", field: .dayOfWeek, position: 13, messageContains: "write 7"),
        Refusal(expression: "1,,2 * * * *", field: .minute, position: 3, messageContains: "empty list item"),
        Refusal(expression: "1, * * * *", field: .minute, position: 2, messageContains: "ends with a comma"),
        Refusal(expression: "1-* * * * *", field: .minute, position: 3, messageContains: "unexpected character \"*\""),
        Refusal(expression: "*-5 * * * *", field: .minute, position: 2, messageContains: "unexpected character \"-\""),
        Refusal(expression: "* * * * 1#2", field: .dayOfWeek, position: 10, messageContains: "unexpected character \"#\""),
        Refusal(expression: "12345 * * * *", field: .minute, position: 1, messageContains: "too long"),
        Refusal(expression: "0 0 1-3é * *", field: .dayOfMonth, position: 8, messageContains: "unexpected character \"é\""),
        Refusal(expression: "* * * *", field: .expression, position: 8, messageContains: "expected 5 fields"),
        Refusal(expression: "* * * * * *", field: .expression, position: 11, messageContains: "found 6"),
        Refusal(expression: "", field: .expression, position: 1, messageContains: "empty"),
        Refusal(expression: "   ", field: .expression, position: 1, messageContains: "empty"),
        Refusal(expression: "@reboot", field: .expression, position: 1, messageContains: "unknown macro"),
        Refusal(expression: "@daily *", field: .expression, position: 8, messageContains: "stands alone"),
        Refusal(expression: String(repeating: "1,", count: 200) + "1 * * * *", field: .expression, position: 257, messageContains: "longer than"),
    ]

    @Test(arguments: refusals)
    func refusesWithFieldAndPosition(_ refusal: Refusal) {
        do {
            let parsed = try CronExpression(refusal.expression)
            Issue.record("accepted \(parsed)")
        } catch {
            #expect(error.field == refusal.field)
            #expect(error.position == refusal.position)
            #expect(error.message.contains(refusal.messageContains), "\(error.message)")
        }
    }

    @Test(arguments: ["* * * * *", "  0\t0  * * *  ", "0 0 * * mon", "0 0 * * Mon-fri", "0,15,30,45 */6 1-15/2 jan-JUN 0-7",
        "0 0 31 * *", "@yearly", "@ANNUALLY", "@monthly", "@weekly", "@midnight"])
    func accepts(_ expression: String) throws {
        let parsed = try CronExpression(expression)
        #expect(parsed.source == expression)
        #expect(parsed.description == expression)
    }

    @Test func errorDescriptionNamesFieldAndPosition() {
        #expect(CronError(field: .dayOfWeek, position: 9, message: "unknown weekday name \"FRX\"").description
            == "day-of-week field, position 9: unknown weekday name \"FRX\"")
        #expect(CronError(field: .expression, position: 8, message: "expected 5 fields").description
            == "cron expression, position 8: expected 5 fields")
        #expect(CronError(field: .timeZone, position: 1, message: "unknown").description == "time zone, position 1: unknown")
    }

    @Test func dayRuleFollowsVixie() throws {
        // 2026-06-01 is a Monday; 2026-06-02 a Tuesday; 2026-06-08 a Monday.
        let either = try CronExpression("0 0 1 * MON")
        #expect(either.matchesDay(month: 6, day: 1, weekday: 1))
        #expect(either.matchesDay(month: 6, day: 8, weekday: 1))
        #expect(either.matchesDay(month: 7, day: 1, weekday: 3))
        #expect(!either.matchesDay(month: 6, day: 2, weekday: 2))
        let both = try CronExpression("0 0 */1 * MON")
        #expect(both.matchesDay(month: 6, day: 8, weekday: 1))
        #expect(!both.matchesDay(month: 7, day: 1, weekday: 3))
        let monthOnly = try CronExpression("0 0 * 2 *")
        #expect(monthOnly.matchesDay(month: 2, day: 10, weekday: 2))
        #expect(!monthOnly.matchesDay(month: 3, day: 10, weekday: 2))
    }
}
