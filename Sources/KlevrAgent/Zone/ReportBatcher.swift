import KlevrAPI

/// On a primary: members' signed reports, gathered into the primary's own exchanges with the manager
/// (one at a time, each carrying everything that arrived meanwhile), so that a zone's reports cost the
/// manager one transaction per exchange rather than one per member. A member gets its answer only
/// after the manager acknowledged: the manager-signed acknowledgements, or nothing.
actor ReportBatcher {
    private struct Waiting {
        var member: String
        var blob: SignedBlob
        var continuation: CheckedContinuation<SignedBlob?, Never>
    }

    /// Sends a batch upstream; returns the manager's signed acknowledgements per member (nil on failure).
    typealias Send = @Sendable ([SignedBlob]) async -> [String: SignedBlob]?

    private var waiting: [Waiting] = []
    private var flushing = false
    private let send: Send
    /// Bound of one upstream batch (base64 payload characters).
    static let maxBatchBytes = 12 << 20

    init(send: @escaping Send) {
        self.send = send
    }

    /// Bound of what waits in all (base64 payload characters).
    static let maxWaitingBytes = 64 << 20
    private var waitingBytes = 0

    /// Queues a member's report and waits for the manager's acknowledgement of it. A member with a report
    /// already waiting, or a full queue, gets nothing (it sends again later): one member cannot fill the
    /// primary's memory.
    func submit(_ blob: SignedBlob, from member: String) async -> SignedBlob? {
        let size = blob.payload.utf8.count
        if waiting.contains(where: { $0.member == member }) || waitingBytes + size > Self.maxWaitingBytes { return nil }
        waitingBytes += size
        return await withCheckedContinuation { continuation in
            waiting.append(Waiting(member: member, blob: blob, continuation: continuation))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while !waiting.isEmpty {
            var batch: [Waiting] = []
            var bytes = 0
            var members: Set<String> = []
            var rest: [Waiting] = []
            for entry in waiting {
                // One report per member and exchange: the manager acknowledges per member.
                if members.contains(entry.member) || (!batch.isEmpty && bytes + entry.blob.payload.utf8.count > Self.maxBatchBytes) {
                    rest.append(entry)
                    continue
                }
                batch.append(entry)
                members.insert(entry.member)
                bytes += entry.blob.payload.utf8.count
            }
            waiting = rest
            waitingBytes -= bytes
            let acks = await send(batch.map(\.blob))
            for entry in batch { entry.continuation.resume(returning: acks?[entry.member]) }
        }
        flushing = false
    }
}
