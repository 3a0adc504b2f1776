import Foundation

/// Wall-clock time in epoch milliseconds, the one time format of the store and the API.
public enum Clock {
    public static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
