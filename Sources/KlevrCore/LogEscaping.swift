import Logging

/// Values that came from requests (zone names, user names, reasons) are logged; they must not be able to
/// forge log lines. ``escape(_:)`` writes control characters (C0, DEL, C1, and the Unicode line and
/// paragraph separators) as visible escapes, and bounds the length.
public enum LogValue {
    /// The longest value written to a log line, in characters; longer ones end in `…`.
    public static let maxCharacters = 512

    public static func escape(_ value: some StringProtocol, limit: Int = maxCharacters) -> String {
        var out = ""
        var count = 0
        for scalar in value.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            count += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                let v = scalar.value
                if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x2028 || v == 0x2029 || v == 0x85 {
                    out += "\\u{" + String(v, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A metadata value with every string in it escaped.
    public static func escape(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text): .string(escape(text))
        case .stringConvertible(let convertible): .string(escape(convertible.description))
        case .array(let values): .array(values.map(escape))
        case .dictionary(let values): .dictionary(Dictionary(uniqueKeysWithValues: values.map { (escape($0.key), escape($0.value)) }))
        }
    }
}

/// A log handler that escapes the message and every metadata value before its inner handler writes them,
/// so that one line of the log is always one event, whatever a request put into a logged value. Every
/// process of Klevr logs through it (see `LogSetup` in the `klevr` target).
public struct EscapingLogHandler: LogHandler {
    public var inner: any LogHandler

    public init(_ inner: any LogHandler) {
        self.inner = inner
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(LogValue.escape) }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(LogValue.escape) }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = "\(LogValue.escape(event.message.description))"
        event.metadata = event.metadata?.mapValues(LogValue.escape)
        inner.log(event: event)
    }
}
