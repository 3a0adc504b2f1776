import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Testing

/// `--max-runs`: at most N runs at once, the others in arrival order.
@Suite(.timeLimit(.minutes(2)))
struct RunSlotsTests {
    /// Polls `condition` until it holds or the deadline passes.
    static func eventually(within seconds: Double = 60, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }

    actor Recorder {
        var order: [Int] = []
        func record(_ index: Int) { order.append(index) }
    }

    @Test func waitersGetSlotsInArrivalOrder() async throws {
        let slots = RunSlots(limit: 1)
        try await slots.acquire()
        let recorder = Recorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    try await slots.acquire()
                    await recorder.record(index)
                    slots.release()
                }
                // The next waiter is added only once this one is queued.
                #expect(await Self.eventually { slots.waiting == index + 1 })
            }
            #expect(await recorder.order.isEmpty)
            slots.release()
            try await group.waitForAll()
        }
        #expect(await recorder.order == [0, 1, 2])
    }

    @Test func aCancelledWaiterLeavesTheQueueWithoutASlot() async throws {
        let slots = RunSlots(limit: 1)
        try await slots.acquire()
        let waiter = Task { try await slots.acquire() }
        #expect(await Self.eventually { slots.waiting == 1 })
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(slots.waiting == 0)
        slots.release()
        // The one slot is free again: taking it does not wait.
        try await slots.acquire()
        #expect(slots.waiting == 0)
    }

    @Test func aRunStoppedWhileQueuedEndsAtOnceWithoutRunning() async throws {
        let fixture = try ExecutorTests.Fixture()
        let slots = RunSlots(limit: 1)
        try await slots.acquire()
        let control = RunControl()
        let marker = fixture.directory + "/ran"
        let envelope = fixture.envelope([StepSpec(script: "touch '\(marker)'")])
        let executor = fixture.executor
        let queued = Task { await slots.withSlot(unlessStopped: control) { await executor.execute(envelope, control: control) } }
        #expect(await Self.eventually { slots.waiting == 1 })
        await control.stop(.canceled)
        let result = await queued.value
        #expect(result.outcome == .canceled)
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(slots.waiting == 0)
        slots.release()
        try await slots.acquire()
    }

    @Test func withOneSlotRunsNeverOverlap() async throws {
        let fixture = try ExecutorTests.Fixture()
        let shared = fixture.directory + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        let slots = RunSlots(limit: 1)
        let executor = fixture.executor
        // Each run holds a directory as a flag while it runs: mkdir fails if another run holds it.
        let script = "mkdir '\(shared)/busy' || exit 3; echo \"$KLEVR_PARAM_N\" >> '\(shared)/order'; sleep 0.2; rmdir '\(shared)/busy'"
        let envelopes = (0..<4).map { fixture.envelope([StepSpec(script: script)], params: ["N": String($0)]) }
        let outcomes = await withTaskGroup(of: RunOutcome.self) { group in
            for envelope in envelopes {
                group.addTask {
                    let control = RunControl()
                    return await slots.withSlot(unlessStopped: control) { await executor.execute(envelope, control: control) }.outcome
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == Array(repeating: .succeeded, count: 4))
        let order = String(decoding: FileManager.default.contents(atPath: shared + "/order") ?? Data(), as: UTF8.self)
        #expect(order.split(separator: "\n").count == 4)
    }

    @Test func withTwoSlotsTwoRunsDoOverlap() async throws {
        let fixture = try ExecutorTests.Fixture()
        let shared = fixture.directory + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        let slots = RunSlots(limit: 2)
        let executor = fixture.executor
        // Each run announces itself, then waits (bounded) for the other's announcement.
        let script = """
            touch '\(shared)'/"$KLEVR_PARAM_N"; i=0
            while [ $i -lt 200 ]; do [ -e '\(shared)/0' ] && [ -e '\(shared)/1' ] && exit 0; sleep 0.05; i=$((i+1)); done; exit 5
            """
        let outcomes = await withTaskGroup(of: RunOutcome.self) { group in
            for index in 0..<2 {
                let envelope = fixture.envelope([StepSpec(script: script)], params: ["N": String(index)])
                group.addTask {
                    let control = RunControl()
                    return await slots.withSlot(unlessStopped: control) { await executor.execute(envelope, control: control) }.outcome
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == [.succeeded, .succeeded])
    }
}
