import ArgumentParser
import Foundation

/// An instant given on the command line: RFC 3339 (`2026-12-01T03:00:00Z`, `2026-12-01T04:00:00+01:00`)
/// or relative to now (`+90s`, `+15m`, `+2h`, `+1d`). Converted to epoch milliseconds.
enum TimeArgument {
    static func millis(_ text: String, option: String, now: Date = Date()) throws -> Int64 {
        if text.hasPrefix("+") {
            let body = text.dropFirst()
            guard let unit = body.last, let amount = Int64(body.dropLast()), amount >= 0 else {
                throw ValidationError("\(option) must be a time like 2026-12-01T03:00:00Z or +90s, +15m, +2h, +1d; got '\(text)'")
            }
            let seconds: Int64
            switch unit {
            case "s": seconds = 1
            case "m": seconds = 60
            case "h": seconds = 3600
            case "d": seconds = 86400
            default: throw ValidationError("\(option): the unit of '\(text)' must be s, m, h or d")
            }
            let (product, overflow) = amount.multipliedReportingOverflow(by: seconds * 1000)
            guard !overflow else { throw ValidationError("\(option): '\(text)' is too far ahead") }
            return Int64(now.timeIntervalSince1970 * 1000) + product
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        throw ValidationError("\(option) must be a time like 2026-12-01T03:00:00Z or +90s, +15m, +2h, +1d; got '\(text)'")
    }
}
