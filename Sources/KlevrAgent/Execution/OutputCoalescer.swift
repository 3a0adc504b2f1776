import KlevrAPI

/// Which pipe of a step a piece of output came from; the raw value is the log chunk's `stream`.
enum OutputStream: String, Sendable, CaseIterable {
    case stdout
    case stderr

    /// The log chunk's `stream` for this pipe.
    var chunkStream: LogChunk.StreamPayload {
        switch self {
        case .stdout: .stdout
        case .stderr: .stderr
        }
    }
}

/// One step's output on its way to the outbox: masked, decoded as UTF-8 without splitting a
/// character, and coalesced into few chunks (each one an fsynced outbox file).
///
/// A pure state machine: pipe reads and clock ticks go in, chunks to write come out. A stream's
/// pending text is flushed when it reaches ``flushBytes`` or when its oldest byte is
/// ``flushInterval`` old, and at ``finish()``.
struct OutputCoalescer: Sendable {
    /// A piece of output to append to the outbox, valid UTF-8 of at most ``flushBytes`` bytes.
    struct Chunk: Sendable, Equatable {
        var stream: OutputStream
        var text: String
    }

    /// The longest time a byte waits before it is flushed (given ticks at least this often).
    let flushInterval: Duration
    /// The size at which pending output is flushed at once; also the largest chunk, well under the
    /// manager's 256 KiB limit.
    let flushBytes: Int

    private struct Lane: Sendable {
        var masker: SecretMasker
        var decoder = UTF8ChunkDecoder()
        var pending: [UInt8] = []
        var pendingSince: ContinuousClock.Instant?
    }

    private var stdout: Lane
    private var stderr: Lane

    init(secrets: [String], minimumSecretLength: Int = SecretMasker.minimumLength, flushInterval: Duration = .milliseconds(100), flushBytes: Int = 64 * 1024) {
        self.flushInterval = flushInterval
        self.flushBytes = max(4, flushBytes)
        stdout = Lane(masker: SecretMasker(secrets: secrets, minimumLength: minimumSecretLength))
        stderr = Lane(masker: SecretMasker(secrets: secrets, minimumLength: minimumSecretLength))
    }

    /// Takes one read of a pipe; returns what is due.
    mutating func append(_ bytes: [UInt8], from stream: OutputStream, at now: ContinuousClock.Instant) -> [Chunk] {
        withLane(stream) { lane, flushBytes, flushInterval in
            lane.pending += lane.decoder.decode(lane.masker.mask(bytes))
            if lane.pending.isEmpty { return [] }
            if lane.pendingSince == nil { lane.pendingSince = now }
            var chunks = Self.cut(&lane, stream: stream, limit: flushBytes, all: false)
            if let since = lane.pendingSince, now - since >= flushInterval {
                chunks += Self.cut(&lane, stream: stream, limit: flushBytes, all: true)
            }
            return chunks
        }
    }

    /// A clock tick: returns the pending output that has waited ``flushInterval``.
    mutating func tick(at now: ContinuousClock.Instant) -> [Chunk] {
        OutputStream.allCases.flatMap { stream in
            withLane(stream) { lane, flushBytes, flushInterval in
                guard let since = lane.pendingSince, now - since >= flushInterval else { return [] }
                return Self.cut(&lane, stream: stream, limit: flushBytes, all: true)
            }
        }
    }

    /// The step ended: returns everything left, including held-back bytes (masked, decoded lossily).
    mutating func finish() -> [Chunk] {
        OutputStream.allCases.flatMap { stream in
            withLane(stream) { lane, flushBytes, _ in
                lane.pending += lane.decoder.decode(lane.masker.finish())
                lane.pending += lane.decoder.finish()
                return Self.cut(&lane, stream: stream, limit: flushBytes, all: true)
            }
        }
    }

    private mutating func withLane(_ stream: OutputStream, _ body: (inout Lane, Int, Duration) -> [Chunk]) -> [Chunk] {
        switch stream {
        case .stdout: body(&stdout, flushBytes, flushInterval)
        case .stderr: body(&stderr, flushBytes, flushInterval)
        }
    }

    /// Cuts the pending bytes into chunks of at most `limit` bytes at character boundaries: only full
    /// chunks, or (`all`) everything.
    private static func cut(_ lane: inout Lane, stream: OutputStream, limit: Int, all: Bool) -> [Chunk] {
        var chunks: [Chunk] = []
        var start = 0
        let pending = lane.pending
        while pending.count - start >= limit || (all && start < pending.count) {
            var end = min(start + limit, pending.count)
            // Pending bytes are valid UTF-8: step back from a continuation byte to the character start.
            while end < pending.count && end > start && pending[end] & 0xC0 == 0x80 { end -= 1 }
            chunks.append(Chunk(stream: stream, text: String(decoding: pending[start..<end], as: UTF8.self)))
            start = end
        }
        if start > 0 {
            lane.pending.removeFirst(start)
            lane.pendingSince = lane.pending.isEmpty ? nil : lane.pendingSince
        }
        return chunks
    }
}
