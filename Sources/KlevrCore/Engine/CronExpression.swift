/// A parsed 5-field cron expression: `minute hour day-of-month month day-of-week`.
///
/// The syntax is Vixie cron's (the one in `crontab(5)`):
/// - each field is a comma-separated list of items; an item is `*`, a value, a range `a-b`, and any of those
///   followed by a step `/n` (`*/15`, `10-40/10`); a value followed by a step (`5/15`) runs from the value to
///   the end of the field's range;
/// - minute 0–59, hour 0–23, day of month 1–31, month 1–12 or `JAN`–`DEC`, day of week 0–7 or `SUN`–`SAT`
///   (0 and 7 are both Sunday); names are case-insensitive and also work in ranges (`MON-FRI`);
/// - a range runs forwards only (`FRI-SUN` is refused: write `FRI-7`); a step is at least 1 and at most the
///   number of values of its field;
/// - the macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for
///   their usual expansions (`@reboot` has no meaning for a task and is refused).
///
/// Day matching follows Vixie's rule: when both the day-of-month and the day-of-week fields are restricted (do
/// not start with `*`), a day matches when **either** matches (`0 0 1 * MON` fires on the 1st and on every
/// Monday); when one of them starts with `*` (including `*/2`), both must match.
///
/// An expression is at most ``maximumLength`` characters. Time zones and fire times are ``CronSchedule``'s job.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The longest expression accepted, in characters.
    public static let maximumLength = 256

    /// The text the expression was parsed from.
    public let source: String
    /// Bit `n` set: minute `n` matches.
    let minutes: UInt64
    /// Bit `n` set: hour `n` matches.
    let hours: UInt64
    /// Bit `n` set: day of month `n` (1–31) matches.
    let daysOfMonth: UInt64
    /// Bit `n` set: month `n` (1–12) matches.
    let months: UInt64
    /// Bit `n` set: weekday `n` (0 = Sunday … 6 = Saturday) matches.
    let daysOfWeek: UInt64
    /// Whether the day-of-month field starts with `*` (Vixie's `DOM_STAR`).
    let dayOfMonthIsStar: Bool
    /// Whether the day-of-week field starts with `*` (Vixie's `DOW_STAR`).
    let dayOfWeekIsStar: Bool

    /// The expression as written.
    public var description: String { source }

    /// Parses an expression.
    /// - Throws: ``CronError`` naming the field and the 1-based character position of the first problem.
    public init(_ text: String) throws(CronError) {
        let chars = Array(text)
        guard chars.count <= Self.maximumLength else {
            throw CronError(field: .expression, position: Self.maximumLength + 1,
                message: "the expression is longer than \(Self.maximumLength) characters")
        }
        var fields: [Range<Int>] = []
        var index = 0
        while index < chars.count {
            if chars[index] == " " || chars[index] == "\t" {
                index += 1
                continue
            }
            let start = index
            while index < chars.count, chars[index] != " ", chars[index] != "\t" { index += 1 }
            fields.append(start..<index)
        }
        guard let first = fields.first else {
            throw CronError(field: .expression, position: 1, message: "the expression is empty")
        }
        if chars[first.lowerBound] == "@" {
            guard fields.count == 1 else {
                throw CronError(field: .expression, position: fields[1].lowerBound + 1,
                    message: "a macro such as \(String(chars[first])) stands alone")
            }
            let macro = String(chars[first]).lowercased()
            guard let expansion = Self.macros[macro] else {
                throw CronError(field: .expression, position: first.lowerBound + 1,
                    message: "unknown macro \"\(String(chars[first]))\" (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)")
            }
            self = CronExpression(copying: try CronExpression(expansion), source: text)
            return
        }
        guard fields.count == 5 else {
            let position = fields.count > 5 ? fields[5].lowerBound + 1 : chars.count + 1
            throw CronError(field: .expression, position: position,
                message: "expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        let minute = try CronFieldParser.parse(.minute, chars: chars, range: fields[0])
        let hour = try CronFieldParser.parse(.hour, chars: chars, range: fields[1])
        let dayOfMonth = try CronFieldParser.parse(.dayOfMonth, chars: chars, range: fields[2])
        let month = try CronFieldParser.parse(.month, chars: chars, range: fields[3])
        let dayOfWeek = try CronFieldParser.parse(.dayOfWeek, chars: chars, range: fields[4])
        source = text
        minutes = minute.bits
        hours = hour.bits
        daysOfMonth = dayOfMonth.bits
        months = month.bits
        daysOfWeek = dayOfWeek.bits
        dayOfMonthIsStar = dayOfMonth.startsWithStar
        dayOfWeekIsStar = dayOfWeek.startsWithStar
    }

    private init(copying other: CronExpression, source: String) {
        self.source = source
        minutes = other.minutes
        hours = other.hours
        daysOfMonth = other.daysOfMonth
        months = other.months
        daysOfWeek = other.daysOfWeek
        dayOfMonthIsStar = other.dayOfMonthIsStar
        dayOfWeekIsStar = other.dayOfWeekIsStar
    }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// Whether the expression fires on the given local calendar day (Vixie's day rule included).
    /// - Parameters:
    ///   - month: 1–12.
    ///   - day: 1–31.
    ///   - weekday: 0 = Sunday … 6 = Saturday.
    public func matchesDay(month: Int, day: Int, weekday: Int) -> Bool {
        guard Self.has(months, month) else { return false }
        let dayOfMonthMatches = Self.has(daysOfMonth, day)
        let dayOfWeekMatches = Self.has(daysOfWeek, weekday)
        if dayOfMonthIsStar || dayOfWeekIsStar {
            return dayOfMonthMatches && dayOfWeekMatches
        }
        return dayOfMonthMatches || dayOfWeekMatches
    }

    /// The matching hours of a day, ascending.
    var hourList: [Int] { Self.values(hours, in: 0...23) }
    /// The matching minutes of an hour, ascending.
    var minuteList: [Int] { Self.values(minutes, in: 0...59) }

    private static func has(_ bits: UInt64, _ value: Int) -> Bool {
        value >= 0 && value < 64 && bits & (1 << UInt64(value)) != 0
    }

    private static func values(_ bits: UInt64, in range: ClosedRange<Int>) -> [Int] {
        range.filter { has(bits, $0) }
    }
}
