import KlevrCore
import Testing

@Suite struct RunStateMachineTests {
    typealias Row = (from: RunStatus, event: RunEvent, expected: RunStateMachine.Decision?)

    /// The whole table: every (state, event) pair, with nil meaning "refused".
    static let table: [Row] = {
        var rows: [Row] = []
        let events: [RunEvent] = [.dispatch, .redeliver, .release, .start, .cancel, .abandon] + RunOutcome.allCases.map { .finish($0) }
        for status in RunStatus.allCases {
            for event in events {
                rows.append((status, event, expected(status, event)))
            }
        }
        return rows
    }()

    /// The intended rules, written independently of the implementation's switch.
    static func expected(_ status: RunStatus, _ event: RunEvent) -> RunStateMachine.Decision? {
        switch event {
        case .dispatch:
            return status == .queued ? .transition(to: .dispatched) : nil
        case .redeliver, .release:
            return status == .dispatched ? .stay : nil
        case .cancel:
            if status == .queued { return .transition(to: .canceled) }
            if status == .dispatched || status == .running { return .stay }
            return nil
        case .abandon:
            return status == .dispatched || status == .running ? .transition(to: .canceled) : nil
        case .start:
            if status == .dispatched { return .transition(to: .running) }
            if status == .running || status.isTerminal { return .duplicate }
            return nil
        case .finish(let outcome):
            if status == .dispatched || status == .running { return .transition(to: outcome.status) }
            if status.isTerminal { return status == outcome.status ? .duplicate : nil }
            return nil
        }
    }

    @Test(arguments: table.indices)
    func transitionTable(index: Int) {
        let row = Self.table[index]
        let decision = try? RunStateMachine.apply(row.event, to: row.from)
        #expect(decision == row.expected, "\(row.from) + \(row.event)")
    }

    @Test func tableCoversEveryStatus() {
        #expect(Set(Self.table.map(\.from)) == Set(RunStatus.allCases))
        #expect(Self.table.count == RunStatus.allCases.count * 10)
    }

    @Test func refusalNamesStateAndEvent() {
        #expect(throws: RunTransitionError.self) { try RunStateMachine.apply(.finish(.failed), to: .succeeded) }
        do {
            _ = try RunStateMachine.apply(.start, to: .queued)
            Issue.record("start of a queued run must be refused")
        } catch {
            #expect(error.description.contains("queued"))
        }
    }

    @Test(arguments: RunStatus.allCases)
    func terminalStatesAcceptNoOtherOutcome(status: RunStatus) {
        guard status.isTerminal else { return }
        for outcome in RunOutcome.allCases where outcome.status != status {
            #expect((try? RunStateMachine.apply(.finish(outcome), to: status)) == nil)
        }
    }
}
