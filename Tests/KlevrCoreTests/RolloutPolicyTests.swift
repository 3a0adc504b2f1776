import KlevrCore
import Testing

@Suite struct RolloutPolicyTests {
    @Test(arguments: [("3", RolloutLimit.count(3)), ("0", .count(0)), ("10%", .percent(10)), ("0%", .percent(0)), ("100%", .percent(100)),
        ("1000000", .count(1_000_000))])
    func parsesLimits(text: String, expected: RolloutLimit) throws {
        #expect(try RolloutLimit(parsing: text, field: "maxErrors") == expected)
        #expect(expected.description == text)
    }

    @Test(arguments: ["", "-1", "+1", "101%", "1.5", "%", "10 %", " 3", "\u{FF11}", "1000001", "99999999999999999999", "3%%", "x"])
    func refusesBadLimits(text: String) {
        #expect(throws: RolloutError.self) { try RolloutLimit(parsing: text, field: "maxErrors") }
        do { _ = try RolloutLimit(parsing: text, field: "maxErrors") } catch { #expect(error.description.hasPrefix("maxErrors: ")) }
    }

    @Test func concurrencyMustAllowOneRun() {
        #expect(throws: RolloutError(field: "maxConcurrency", message: "must allow at least one run at a time")) {
            try RolloutPolicy(maxConcurrency: "0", maxErrors: nil)
        }
        #expect(throws: RolloutError.self) { try RolloutPolicy(maxConcurrency: "0%", maxErrors: nil) }
        #expect(throws: RolloutError.self) { try RolloutPolicy(maxConcurrency: "2", maxErrors: "ten") }
    }

    @Test func percentagesRoundConcurrencyUpAndErrorsDown() throws {
        let policy = try RolloutPolicy(maxConcurrency: "10%", maxErrors: "10%")
        #expect(policy.concurrencyLimit(targets: 15) == 2)
        #expect(policy.concurrencyLimit(targets: 3) == 1)
        #expect(policy.concurrencyLimit(targets: 0) == 1)
        #expect(policy.errorLimit(targets: 15) == 1)
        #expect(policy.errorLimit(targets: 50) == 5)
        #expect(policy.errorLimit(targets: 9) == 0)
        let unlimited = try RolloutPolicy()
        #expect(unlimited.concurrencyLimit(targets: 10_000) == Int.max)
        #expect(unlimited.errorLimit(targets: 10_000) == nil)
    }

    @Test(arguments: [
        // (concurrency, errors, progress, decision)
        ("2", "1", RolloutProgress(notStarted: 10), RolloutDecision.start(2)),
        ("2", "1", RolloutProgress(notStarted: 8, inFlight: 2), .wait),
        ("2", "1", RolloutProgress(notStarted: 7, inFlight: 1, succeeded: 1, errors: 1), .start(1)),
        ("2", "1", RolloutProgress(notStarted: 6, inFlight: 1, succeeded: 1, errors: 2), .stop(reason: "rollout stopped: 2 runs failed, more than maxErrors 1")),
        ("2", "0", RolloutProgress(notStarted: 6, inFlight: 1, errors: 1), .stop(reason: "rollout stopped: 1 run failed, more than maxErrors 0")),
        ("5", "1", RolloutProgress(notStarted: 1, inFlight: 1), .start(1)),
        ("2", "1", RolloutProgress(inFlight: 1, errors: 5), .done),
        ("2", "1", RolloutProgress(succeeded: 10), .done),
        ("10%", "10%", RolloutProgress(notStarted: 10, inFlight: 1, succeeded: 2, errors: 2),
            .stop(reason: "rollout stopped: 2 runs failed, more than maxErrors 10% (1 of 15)")),
    ])
    func decisions(concurrency: String, errors: String, progress: RolloutProgress, expected: RolloutDecision) throws {
        #expect(try RolloutPolicy(maxConcurrency: concurrency, maxErrors: errors).decide(progress) == expected)
    }

    @Test func withoutLimitsEverythingStartsAndNothingStops() throws {
        let policy = try RolloutPolicy()
        #expect(policy.decide(RolloutProgress(notStarted: 10_000)) == .start(10_000))
        #expect(policy.decide(RolloutProgress(notStarted: 3, errors: 500)) == .start(3))
    }

    @Test func countsStatuses() {
        let progress = RolloutProgress(statuses: [.queued, .queued, .dispatched, .running, .succeeded, .failed, .timedOut, .canceled])
        #expect(progress == RolloutProgress(notStarted: 2, inFlight: 2, succeeded: 1, errors: 2, canceled: 1))
        #expect(progress.targets == 8)
    }

    /// Ten agents, `maxConcurrency 2`, `maxErrors 1`, the first and third runs fail: never more than two run at
    /// once, and the rollout stops at the second failure with six runs never started.
    @Test func fanOutSimulation() throws {
        let policy = try RolloutPolicy(maxConcurrency: "2", maxErrors: "1")
        let failing: Set<Int> = [0, 2]
        var statuses = [RunStatus](repeating: .queued, count: 10)
        var inFlightOrder: [Int] = []
        var peak = 0
        var stopReason: String?
        while true {
            switch policy.decide(RolloutProgress(statuses: statuses)) {
            case .start(let count):
                let next = statuses.indices.filter { statuses[$0] == .queued }.prefix(count)
                for index in next {
                    statuses[index] = .running
                    inFlightOrder.append(index)
                }
            case .stop(let reason):
                stopReason = reason
                for index in statuses.indices where statuses[index] == .queued { statuses[index] = .canceled }
            case .wait, .done:
                break
            }
            peak = max(peak, statuses.filter { $0 == .running }.count)
            guard !inFlightOrder.isEmpty else { break }
            let finished = inFlightOrder.removeFirst()
            statuses[finished] = failing.contains(finished) ? .failed : .succeeded
        }
        #expect(peak == 2)
        #expect(stopReason == "rollout stopped: 2 runs failed, more than maxErrors 1")
        #expect(statuses == [.failed, .succeeded, .failed, .succeeded] + Array(repeating: .canceled, count: 6))
    }
}
