/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), without Foundation's
/// `Calendar`: pure integer functions, exact for any year an `Int` can hold (Howard Hinnant's algorithms).
enum CivilCalendar {
    /// A calendar day.
    struct Day: Sendable, Equatable {
        var year: Int
        /// 1–12.
        var month: Int
        /// 1–31.
        var day: Int
    }

    /// The day number of a calendar day.
    static func dayNumber(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let shiftedMonth = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The calendar day of a day number.
    static func day(_ number: Int) -> Day {
        let z = number + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return Day(year: year, month: month, day: day)
    }

    /// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
    static func weekday(_ number: Int) -> Int {
        let remainder = (number + 4) % 7
        return remainder < 0 ? remainder + 7 : remainder
    }

    /// Division rounding towards negative infinity.
    static func floorDivide<T: BinaryInteger>(_ a: T, _ b: T) -> T {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }
}
