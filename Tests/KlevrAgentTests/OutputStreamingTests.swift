import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Testing

/// Script output on real processes: whole characters, few chunks, no secrets.
@Suite(.timeLimit(.minutes(2)))
struct OutputStreamingTests {
    typealias Fixture = ExecutorTests.Fixture

    @Test func aCharacterSplitAcrossWritesArrivesWhole() async throws {
        let fixture = try Fixture()
        // "€" is E2 82 AC; the pause puts its halves into different reads of the pipe.
        let envelope = fixture.envelope([StepSpec(script: #"printf '\342\202'; sleep 0.3; printf '\254\n'; printf 'x\342' >&2"#)])
        #expect(await fixture.executor.execute(envelope, control: RunControl()).outcome == .succeeded)
        let chunks = await fixture.chunks(envelope.runId)
        #expect(chunks.filter { $0.stream == .stdout }.map(\.data).joined() == "€\n")
        // An incomplete character at the very end is decoded lossily, not dropped.
        #expect(chunks.filter { $0.stream == .stderr }.map(\.data).joined() == "x\u{FFFD}")
    }

    @Test func manySmallWritesBecomeFewChunks() async throws {
        let fixture = try Fixture()
        let envelope = fixture.envelope([StepSpec(script: #"i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done"#)])
        let started = ContinuousClock.now
        #expect(await fixture.executor.execute(envelope, control: RunControl()).outcome == .succeeded)
        let elapsed = ContinuousClock.now - started
        let chunks = await fixture.chunks(envelope.runId)
        let expected = (0..<3000).map { "line \($0)\n" }.joined()
        #expect(chunks.map(\.data).joined() == expected)
        #expect(chunks.map(\.seq) == Array(1...Int64(chunks.count)))
        // At most one flush per 100 ms (plus size flushes and the last one), however slow the machine.
        let bound = Int(elapsed / .milliseconds(100)) + expected.utf8.count / (64 * 1024) + 2
        #expect(chunks.count <= bound, "\(chunks.count) chunks in \(elapsed)")
        // Fewer chunks than writes, whatever the speed (a fixed tenth failed when the script itself ran
        // slowly on a loaded machine: the bound above, from the elapsed time, is the one that scales).
        #expect(chunks.count < 3000, "\(chunks.count) chunks: one per write")
    }

    @Test func largeOutputIsCutIntoBoundedChunks() async throws {
        let fixture = try Fixture()
        // 300 000 bytes of three-byte characters in one go. One `seq` only: a thousand forks took longer
        // than the 30 s timeout on a loaded CI machine.
        let envelope = fixture.envelope([
            StepSpec(script: #"s=$(printf '€%.0s' $(seq 1 100)); i=0; while [ $i -lt 1000 ]; do printf '%s' "$s"; i=$((i+1)); done"#)
        ])
        #expect(await fixture.executor.execute(envelope, control: RunControl()).outcome == .succeeded)
        let chunks = await fixture.chunks(envelope.runId)
        #expect(chunks.allSatisfy { $0.data.utf8.count <= 64 * 1024 })
        #expect(chunks.map(\.data).joined() == String(repeating: "€", count: 100_000))
    }

    @Test func secretsAreMaskedEvenWhenSplitAcrossWrites() async throws {
        let secret = "kcr_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"
        let fixture = try Fixture(maskedSecrets: [secret, "short", ""])
        let envelope = fixture.envelope([
            StepSpec(
                script: """
                    printf 'before kcr_Zm9vYmFy'; sleep 0.3; printf 'YmF6cXV4MTIzNDU2Nzg5 after\\n'
                    echo "err \(secret)" >&2
                    echo "short stays"
                    printf 'tail kcr_Zm9v'
                    echo "\(secret)" > "$KLEVR_RESULT_FILE"
                    """)
        ])
        let result = await fixture.executor.execute(envelope, control: RunControl())
        #expect(result.outcome == .succeeded)
        #expect(result.result == "********\n")
        let chunks = await fixture.chunks(envelope.runId)
        let stdout = chunks.filter { $0.stream == .stdout }.map(\.data).joined()
        let stderr = chunks.filter { $0.stream == .stderr }.map(\.data).joined()
        #expect(stdout == "before ******** after\nshort stays\ntail kcr_Zm9v")
        #expect(stderr == "err ********\n")
    }
}
