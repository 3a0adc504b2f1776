import Foundation
import KlevrAPI
import KlevrCore

/// The agent's on-disk outbox and run ledger.
///
/// - The **ledger** (`ledger/<run id>`) records every run the agent accepted, durably, before it
///   starts: `started` while it may be executing, `done` once the manager acknowledged its result.
///   A run in the ledger is never started again, whatever the manager re-sends.
/// - The **outbox** (`pending/<n>.json`) keeps starts, log chunks and results, in order, until the
///   manager acknowledges them; after a crash they are re-sent from disk.
public actor Outbox {
    /// One thing to report.
    enum Item: Codable, Sendable {
        case started(RunStarted)
        /// A step failed and the run's recover steps start.
        case recovering(RunStarted)
        case log(LogChunk)
        case result(RunResult)

        var runID: String {
            switch self {
            case .started(let start), .recovering(let start): start.runId
            case .log(let chunk): chunk.runId
            case .result(let result): result.runId
            }
        }
    }

    private let ledgerDir: String
    private let pendingDir: String
    private var pending: [(file: String, item: Item)] = []
    private var counter: UInt64 = 0
    private var nextSeq: [String: Int64] = [:]
    /// Rings whenever something new is waiting to be sent.
    nonisolated let doorbell = Doorbell()

    /// Opens (or creates) the outbox in `directory` and loads what is pending.
    public init(directory: String) throws {
        ledgerDir = directory + "/ledger"
        pendingDir = directory + "/pending"
        try DurableFile.makeDirectory(ledgerDir)
        try DurableFile.makeDirectory(pendingDir)
        let names = try FileManager.default.contentsOfDirectory(atPath: pendingDir)
            .filter { $0.hasSuffix(".json") }
            .compactMap { name -> (UInt64, String)? in UInt64(name.dropLast(5)).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
        var loaded: [(file: String, item: Item)] = []
        var highest: UInt64 = 0
        var seqs: [String: Int64] = [:]
        for (number, name) in names {
            let path = pendingDir + "/" + name
            highest = max(highest, number)
            guard let data = FileManager.default.contents(atPath: path), let item = try? JSONDecoder().decode(Item.self, from: data) else {
                // A torn write never reaches this name (writes go through a rename), so this is foreign.
                try? FileManager.default.removeItem(atPath: path)
                continue
            }
            if case .log(let chunk) = item { seqs[chunk.runId] = max(seqs[chunk.runId] ?? 0, chunk.seq) }
            loaded.append((path, item))
        }
        pending = loaded
        counter = highest
        nextSeq = seqs.mapValues { $0 + 1 }
    }

    // MARK: - The ledger

    /// Records a run as accepted before it starts. Returns false when the run was seen before (it must
    /// not be started again).
    ///
    /// With `reportStart: false` the start is reported later, by ``reportStart(_:at:)``, when the run
    /// really starts (it may wait for a free slot first).
    public func begin(_ runID: String, at: Int64, reportStart: Bool = true) throws -> Bool {
        guard Validation.isValidID(runID) else { return false }
        let path = ledgerDir + "/" + runID
        guard !FileManager.default.fileExists(atPath: path) else { return false }
        try DurableFile.write(Data("started".utf8), to: path)
        if reportStart { try append(.started(RunStarted(runId: runID, at: at))) }
        return true
    }

    /// Reports that an accepted run starts executing now.
    public func reportStart(_ runID: String, at: Int64) throws {
        try append(.started(RunStarted(runId: runID, at: at)))
    }

    /// Reports that a step of a run failed and its recover steps start now.
    public func reportRecovering(_ runID: String, at: Int64) throws {
        try append(.recovering(RunStarted(runId: runID, at: at)))
    }

    /// Runs that were accepted but have neither a pending result nor an acknowledged one: they were
    /// executing when the agent stopped.
    public func interruptedRuns() throws -> [String] {
        let withResult = Set(pending.compactMap { entry -> String? in
            if case .result(let result) = entry.item { return result.runId }
            return nil
        })
        return try FileManager.default.contentsOfDirectory(atPath: ledgerDir).filter { name in
            guard Validation.isValidID(name), !withResult.contains(name),
                let data = FileManager.default.contents(atPath: ledgerDir + "/" + name)
            else { return false }
            return String(decoding: data, as: UTF8.self) == "started"
        }
    }

    // MARK: - Reporting

    /// Appends output of a run; numbers chunks per run from 1.
    public func appendLog(runID: String, stream: LogChunk.StreamPayload, data: String, at: Int64) throws {
        let seq = nextSeq[runID] ?? 1
        nextSeq[runID] = seq + 1
        try append(.log(LogChunk(runId: runID, seq: seq, stream: stream, data: data, at: at)))
    }

    /// Records a run's final result.
    public func finish(_ result: RunResult) throws {
        try append(.result(result))
    }

    private func append(_ item: Item) throws {
        counter += 1
        let path = pendingDir + "/\(String(format: "%020llu", counter)).json"
        try DurableFile.write(try JSONEncoder().encode(item), to: path)
        pending.append((path, item))
        doorbell.ring()
    }

    /// Whether nothing waits to be sent.
    public var isEmpty: Bool { pending.isEmpty }

    /// The oldest pending items, as a report, bounded in count and size.
    public func report(agentID: String, maxItems: Int = 2000, maxBytes: Int = 4 << 20) -> AgentReport {
        var report = AgentReport(agentId: agentID)
        var bytes = 0
        for entry in pending.prefix(maxItems) {
            switch entry.item {
            case .started(let start): report.started.append(start)
            case .recovering(let start): report.recovering = (report.recovering ?? []) + [start]
            case .log(let chunk):
                bytes += chunk.data.utf8.count
                report.logs.append(chunk)
            case .result(let result):
                bytes += result.result?.utf8.count ?? 0
                report.results.append(result)
            }
            if bytes >= maxBytes { break }
        }
        return report
    }

    /// Drops what the manager acknowledged (or refused for good) and marks acknowledged results done.
    public func apply(_ acks: SyncAcks) {
        let started = Set(acks.started)
        let recovering = Set(acks.recovering ?? [])
        let results = Set(acks.results)
        var keep: [(file: String, item: Item)] = []
        for entry in pending {
            let drop: Bool
            if acks.rejected[entry.item.runID] != nil {
                drop = true
            } else {
                switch entry.item {
                case .started(let start): drop = started.contains(start.runId)
                // Once the result is stored the recovering report no longer matters (a manager that predates it never acknowledges it).
                case .recovering(let start): drop = recovering.contains(start.runId) || results.contains(start.runId)
                case .log(let chunk): drop = chunk.seq <= (acks.logs[chunk.runId] ?? 0)
                case .result(let result): drop = results.contains(result.runId)
                }
            }
            if drop {
                try? FileManager.default.removeItem(atPath: entry.file)
            } else {
                keep.append(entry)
            }
        }
        pending = keep
        for runID in results.union(acks.rejected.additionalProperties.keys) where Validation.isValidID(runID) {
            let path = ledgerDir + "/" + runID
            if FileManager.default.fileExists(atPath: path) {
                try? DurableFile.write(Data("done".utf8), to: path)
            }
            nextSeq[runID] = nil
        }
    }
}
