/// What one cron field accepts: its range and its names.
struct CronFieldSpec: Sendable {
    let field: CronError.Field
    /// The values that may be written (day of week: 0–7).
    let writable: ClosedRange<Int>
    /// The values `*` stands for (day of week: 0–6, since 7 is Sunday again).
    let all: ClosedRange<Int>
    /// Upper-case three-letter names and their values.
    let names: [String: Int]

    static let minute = CronFieldSpec(field: .minute, writable: 0...59, all: 0...59, names: [:])
    static let hour = CronFieldSpec(field: .hour, writable: 0...23, all: 0...23, names: [:])
    static let dayOfMonth = CronFieldSpec(field: .dayOfMonth, writable: 1...31, all: 1...31, names: [:])
    static let month = CronFieldSpec(
        field: .month, writable: 1...12, all: 1...12,
        names: ["JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12])
    static let dayOfWeek = CronFieldSpec(
        field: .dayOfWeek, writable: 0...7, all: 0...6,
        names: ["SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6])

    /// The number of distinct values, the largest meaningful step.
    var valueCount: Int { all.count }

    /// What kind of value the field expects, for messages.
    var expectation: String {
        switch field {
        case .month: "a number from 1 to 12 or a month name (JAN–DEC)"
        case .dayOfWeek: "a number from 0 to 7 or a weekday name (SUN–SAT)"
        default: "a number from \(writable.lowerBound) to \(writable.upperBound)"
        }
    }
}

/// Parses one field of a cron expression into a bit set, reporting positions in the whole expression.
struct CronFieldParser {
    let spec: CronFieldSpec
    let chars: [Character]
    let range: Range<Int>
    private var index: Int

    init(spec: CronFieldSpec, chars: [Character], range: Range<Int>) {
        self.spec = spec
        self.chars = chars
        self.range = range
        self.index = range.lowerBound
    }

    /// Parses the field at `range` of `chars` as `spec` says.
    static func parse(_ spec: CronFieldSpec, chars: [Character], range: Range<Int>) throws(CronError) -> (bits: UInt64, startsWithStar: Bool) {
        var parser = CronFieldParser(spec: spec, chars: chars, range: range)
        return try parser.parse()
    }

    /// The field's values as bits, and whether it starts with `*` (for Vixie's day rule).
    mutating func parse() throws(CronError) -> (bits: UInt64, startsWithStar: Bool) {
        let startsWithStar = chars[range.lowerBound] == "*"
        var bits: UInt64 = 0
        while true {
            bits |= try item()
            guard index < range.upperBound else { break }
            guard chars[index] == "," else {
                throw error("unexpected character \"\(chars[index])\"", at: index)
            }
            index += 1
            guard index < range.upperBound else { throw error("the list ends with a comma", at: index - 1) }
        }
        return (bits, startsWithStar)
    }

    /// One list item: `*`, `v`, `a-b`, each optionally followed by `/step`.
    private mutating func item() throws(CronError) -> UInt64 {
        guard chars[index] != "," else { throw error("empty list item", at: index) }
        var low: Int
        var high: Int
        var isRange = false
        if chars[index] == "*" {
            low = spec.all.lowerBound
            high = spec.all.upperBound
            isRange = true
            index += 1
        } else {
            low = try value()
            high = low
            if index < range.upperBound, chars[index] == "-" {
                index += 1
                let highStart = index
                high = try value()
                isRange = true
                guard low <= high else {
                    let hint = spec.field == .dayOfWeek && high == 0 ? " (for a range that ends on Sunday write 7)" : ""
                    throw error("the range \(low)-\(high) runs backwards\(hint)", at: highStart)
                }
            }
        }
        var step = 1
        if index < range.upperBound, chars[index] == "/" {
            index += 1
            let stepStart = index
            guard index < range.upperBound, chars[index].isASCII, chars[index].isNumber else {
                throw error("expected a step (a number) after \"/\"", at: index < range.upperBound ? index : index - 1)
            }
            step = try number()
            guard step >= 1, step <= spec.valueCount else {
                throw error("the step \(step) is not between 1 and \(spec.valueCount)", at: stepStart)
            }
            if !isRange { high = spec.all.upperBound }
        }
        var bits: UInt64 = 0
        for value in stride(from: low, through: high, by: step) {
            // Day of week 7 is Sunday, bit 0.
            let normalized = spec.field == .dayOfWeek && value == 7 ? 0 : value
            bits |= 1 << UInt64(normalized)
        }
        return bits
    }

    /// A number or a name, checked against the field's range.
    private mutating func value() throws(CronError) -> Int {
        let start = index
        guard index < range.upperBound else { throw error("expected \(spec.expectation)", at: index - 1) }
        let first = chars[index]
        if first.isASCII, first.isNumber {
            let number = try number()
            guard spec.writable.contains(number) else {
                throw error("\(number) is out of range: expected \(spec.expectation)", at: start)
            }
            return number
        }
        if first.isASCII, first.isLetter {
            while index < range.upperBound, chars[index].isASCII, chars[index].isLetter { index += 1 }
            let name = String(chars[start..<index])
            guard let value = spec.names[name.uppercased()] else {
                if spec.names.isEmpty {
                    throw error("\"\(name)\" is not a number: expected \(spec.expectation)", at: start)
                }
                let kind = spec.field == .month ? "month" : "weekday"
                throw error("unknown \(kind) name \"\(name)\": expected \(spec.expectation)", at: start)
            }
            return value
        }
        throw error("unexpected character \"\(first)\": expected \(spec.expectation)", at: start)
    }

    /// Decimal digits; more than 4 are refused before they could overflow anything.
    private mutating func number() throws(CronError) -> Int {
        let start = index
        var result = 0
        while index < range.upperBound, chars[index].isASCII, let digit = chars[index].wholeNumberValue {
            guard index - start < 4 else { throw error("the number is too long", at: start) }
            result = result * 10 + digit
            index += 1
        }
        return result
    }

    private func error(_ message: String, at index: Int) -> CronError {
        CronError(field: spec.field, position: index + 1, message: message)
    }
}
