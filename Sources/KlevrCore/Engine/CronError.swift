/// Why a cron expression or its time zone was refused: the field, the character position and what is wrong.
///
/// `position` is 1-based and counts characters (not bytes) in the text that was parsed: the expression for
/// the five fields and for `.expression`, the zone identifier for `.timeZone`. An API maps it to a field-level
/// validation error such as `schedule.cron: day-of-week field, position 11: unknown weekday name "FRX"`.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The part of the schedule that is wrong.
    public enum Field: String, Sendable, Equatable, CaseIterable {
        case minute
        case hour
        case dayOfMonth = "day-of-month"
        case month
        case dayOfWeek = "day-of-week"
        /// The expression as a whole (for instance the wrong number of fields).
        case expression
        /// The IANA time zone identifier.
        case timeZone = "time zone"
    }

    /// The part of the schedule that is wrong.
    public var field: Field
    /// The 1-based character position of the problem in the parsed text.
    public var position: Int
    /// What is wrong, in a sentence fragment that reads after the field and position.
    public var message: String

    /// Creates an error.
    public init(field: Field, position: Int, message: String) {
        self.field = field
        self.position = position
        self.message = message
    }

    /// For example `day-of-week field, position 11: unknown weekday name "FRX"`.
    public var description: String {
        switch field {
        case .expression: "cron expression, position \(position): \(message)"
        case .timeZone: "time zone, position \(position): \(message)"
        default: "\(field.rawValue) field, position \(position): \(message)"
        }
    }
}
