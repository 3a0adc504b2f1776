import KlevrCore
import Testing

@Suite struct RunStateMachineTests {
    typealias Row = (from: RunStatus, event: RunEvent, expected: RunStateMachine.Decision?)

    static let events: [RunEvent] =
        [.due, .dispatch, .redeliver, .release, .start, .recover, .cancel, .abandon, .expire] + RunOutcome.allCases.map { .finish($0) }

    /// The whole table: every (state, event) pair, with nil meaning "refused".
    static let table: [Row] = {
        var rows: [Row] = []
        for status in RunStatus.allCases {
            for event in events {
                rows.append((status, event, expected(status, event)))
            }
        }
        return rows
    }()

    /// The intended rules, written independently of the implementation's switch.
    static func expected(_ status: RunStatus, _ event: RunEvent) -> RunStateMachine.Decision? {
        let handedOut: Set<RunStatus> = [.dispatched, .running, .recovering]
        switch event {
        case .due:
            return status == .scheduled ? .transition(to: .queued) : nil
        case .dispatch:
            return status == .queued ? .transition(to: .dispatched) : nil
        case .redeliver, .release:
            return status == .dispatched ? .stay : nil
        case .cancel:
            if status == .scheduled || status == .queued { return .transition(to: .canceled) }
            return handedOut.contains(status) ? .stay : nil
        case .abandon:
            return handedOut.contains(status) ? .transition(to: .canceled) : nil
        case .expire:
            // Never a run that started.
            return [.scheduled, .queued, .dispatched].contains(status) ? .transition(to: .expired) : nil
        case .start:
            if status == .dispatched { return .transition(to: .running) }
            if status == .expired { return nil }
            if status == .running || status == .recovering || status.isTerminal { return .duplicate }
            return nil
        case .recover:
            if status == .dispatched || status == .running { return .transition(to: .recovering) }
            if [.recovering, .failed, .failedRecover, .timedOut, .canceled].contains(status) { return .duplicate }
            return nil
        case .finish(let outcome):
            if status == .dispatched { return .transition(to: outcome.status) }
            // A run that started cannot expire.
            if status == .running { return outcome == .expired ? nil : .transition(to: outcome.status) }
            if status == .recovering { return outcome == .succeeded || outcome == .expired ? nil : .transition(to: outcome.status) }
            if status == .expired { return outcome == .expired ? .duplicate : nil }
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
        #expect(Self.table.count == RunStatus.allCases.count * Self.events.count)
        #expect(RunStatus.allCases.count == 11 && Self.events.count == 15)
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

    @Test func anExpiredRunNeverStartsOrEnds() {
        for event in Self.events where event != .finish(.expired) {
            #expect((try? RunStateMachine.apply(event, to: .expired)) == nil, "\(event)")
        }
        #expect((try? RunStateMachine.apply(.finish(.expired), to: .expired)) == .duplicate)
        #expect((try? RunStateMachine.apply(.finish(.expired), to: .running)) == nil)
    }

    @Test func aRecoveringRunCannotSucceed() throws {
        #expect(throws: RunTransitionError.self) { try RunStateMachine.apply(.finish(.succeeded), to: .recovering) }
        #expect(try RunStateMachine.apply(.finish(.failed), to: .recovering) == .transition(to: .failed))
        #expect(try RunStateMachine.apply(.finish(.failedRecover), to: .recovering) == .transition(to: .failedRecover))
    }

    @Test func everyChangeHasAnEventKind() throws {
        for row in Self.table {
            guard case .transition(let next)? = row.expected else { continue }
            #expect(RunStateMachine.eventKind(row.event, decision: .transition(to: next)) != nil, "\(row.from) + \(row.event)")
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
