import KlevrCore
import Logging
import Synchronization
import Testing

/// Values from requests cannot forge log lines: control characters are escaped in messages and metadata.
@Suite struct LogEscapingTests {
    @Test func controlCharactersAreEscaped() {
        #expect(LogValue.escape("zone\nINFO forged") == "zone\\nINFO forged")
        #expect(LogValue.escape("a\r\tb\u{1B}[31m\u{7F}\u{85}\u{2028}") == "a\\r\\tb\\u{1b}[31m\\u{7f}\\u{85}\\u{2028}")
        // A literal backslash-n sent by a client stays distinguishable from an escaped newline.
        #expect(LogValue.escape("a\\nb") == "a\\\\nb")
        #expect(LogValue.escape("zoné ok") == "zoné ok")
        #expect(LogValue.escape(String(repeating: "x", count: 600)).count == LogValue.maxCharacters + 1)
    }

    @Test func theHandlerEscapesMessagesAndEveryMetadataValue() {
        let lines = Lines()
        var logger = Logger(label: "test") { _ in EscapingLogHandler(Capture(lines: lines)) }
        logger[metadataKey: "request.zone"] = "z\nFORGED"
        logger.info(
            "refused\nFORGED", metadata: ["zone": "x\nFORGED", "list": ["a\nb"], "nested": ["k": "v\rw"], "value": .stringConvertible(Weird())])
        let events = lines.all.withLock { $0 }
        #expect(events.count == 1)
        let (message, metadata) = events[0]
        #expect(message == "refused\\nFORGED")
        #expect(metadata["zone"] == .string("x\\nFORGED"))
        #expect(metadata["request.zone"] == .string("z\\nFORGED"))
        #expect(metadata["list"] == .array([.string("a\\nb")]))
        #expect(metadata["nested"] == .dictionary(["k": .string("v\\rw")]))
        #expect(metadata["value"] == .string("weird\\nline"))
    }

    struct Weird: CustomStringConvertible, Sendable {
        var description: String { "weird\nline" }
    }

    final class Lines: Sendable {
        let all = Mutex<[(String, Logger.Metadata)]>([])
    }

    struct Capture: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            lines.all.withLock { $0.append(("\(event.message)", all)) }
        }
    }
}
