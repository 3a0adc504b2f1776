import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import KlevrTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Agents whose wall clocks are 2 h ahead and 2 h behind the manager's, in a zone whose primary's clock
/// is right (and the other way round): they run work as secondaries and as primary, and every run's
/// times are ordered in the manager's time.
///
/// The clocks are shifted with a tiny LD_PRELOAD library, compiled at test time, that moves only the
/// wall clock (`clock_gettime` for CLOCK_REALTIME and CLOCK_REALTIME_COARSE, `gettimeofday`, `time`) by
/// `KLEVR_TEST_CLOCK_SHIFT` seconds and leaves the monotonic clocks alone (libfaketime is not an
/// option: it hangs the binary's timers). Foundation's `Date()` reads `clock_gettime(CLOCK_REALTIME)`,
/// so the agent's `Clock.nowMillis()` and its log timestamps move with it.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct ClockSkewSystemTests {
    static let shift = 7_200
    /// How far a measured skew may be from the shift (ms).
    static let tolerance: Int64 = 300_000

    static let shiftSource = #"""
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <stdlib.h>
        #include <sys/time.h>
        #include <time.h>

        static long shift_seconds(void) {
            static int known;
            static long seconds;
            if (!known) {
                const char *value = getenv("KLEVR_TEST_CLOCK_SHIFT");
                seconds = value ? strtol(value, NULL, 10) : 0;
                known = 1;
            }
            return seconds;
        }

        int clock_gettime(clockid_t clock, struct timespec *ts) {
            static int (*real)(clockid_t, struct timespec *);
            if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
            int result = real(clock, ts);
            if (result == 0 && ts && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift_seconds();
            return result;
        }

        int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
            static int (*real)(struct timeval *restrict, void *restrict);
            if (!real) real = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT, "gettimeofday");
            int result = real(tv, tz);
            if (result == 0 && tv) tv->tv_sec += shift_seconds();
            return result;
        }

        time_t time(time_t *out) {
            struct timespec ts;
            if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
            if (out) *out = ts.tv_sec;
            return ts.tv_sec;
        }
        """#

    /// Compiles the wall-clock shifting library into `directory` and returns its path (the compiler
    /// waited for on a thread of its own).
    static func shiftLibrary(in directory: String) async throws -> String {
        let source = directory + "/shift.c"
        let library = directory + "/libshift.so"
        try shiftSource.write(toFile: source, atomically: true, encoding: .utf8)
        let log = directory + "/cc.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        // Only touched here and, once it runs, by the thread that waits for it.
        nonisolated(unsafe) let compiler = Process()
        compiler.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        compiler.arguments = ["cc", "-shared", "-fPIC", "-o", library, source, "-ldl"]
        compiler.standardOutput = handle
        compiler.standardError = handle
        try compiler.run()
        await onOwnThread { compiler.waitForExit() }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(compiler.terminationStatus == 0, "cc failed: \(output)")
        return library
    }

    /// The environment of an agent whose wall clock is `seconds` off.
    static func shifted(_ seconds: Int, library: String) -> [String: String] {
        ["LD_PRELOAD": library, "KLEVR_TEST_CLOCK_SHIFT": "\(seconds)"]
    }

    static func zone(_ cluster: Cluster) async throws -> Components.Schemas.Zone {
        try await cluster.zone("z")
    }

    /// The wall-clock time of the first line of a `klevr` log (swift-log's `2026-01-02T03:04:05+0000`).
    static func firstLogTime(_ log: String) -> Date? {
        guard let line = log.split(separator: "\n").first, line.count >= 24 else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ssZ"
        return formatter.date(from: String(line.prefix(24)))
    }

    /// The preload really moves the agent's wall clock: its log's first timestamp is `seconds` off ours.
    static func expectShifted(_ cluster: Cluster, _ name: String, by seconds: Int, startedAt: Date) {
        let log = cluster.agents[name]?.log ?? ""
        guard let stamp = firstLogTime(log) else {
            Issue.record("no timestamp in the log of \(name): \(log.prefix(300))")
            return
        }
        let offset = stamp.timeIntervalSince(startedAt)
        #expect(abs(offset - Double(seconds)) < 120, "\(name)'s log starts at \(stamp), \(offset) s from \(startedAt)")
    }

    /// Runs one task and checks each of its runs: succeeded, with the expected output, and
    /// created ≤ dispatched ≤ started ≤ finished in the manager's (the right) time.
    static func runAndCheck(
        _ cluster: Cluster, _ target: Components.Schemas.Target, names: [String: String], expectedRuns: Int, label: String
    ) async throws {
        let before = Clock.nowMillis()
        let task = try await cluster.createTask(
            .init(zone: "z", target: target, steps: [.init(script: "echo \(label) $KLEVR_RUN_ID; sleep 1; echo done")]))
        #expect(task.runs.count == expectedRuns, "\(label): \(task.runs.count) runs")
        for summary in task.runs {
            try await eventually(60, "run \(summary.id) (\(label)) ends") { try await cluster.run(summary.id).status.isTerminal }
        }
        let after = Clock.nowMillis()
        for summary in task.runs {
            let run = try await cluster.run(summary.id)
            let who = names[run.agentId] ?? run.agentId
            #expect(run.status == .succeeded, "\(label) on \(who): \(run.status) \(run.reason ?? "")")
            let output = try await cluster.output(run.id)
            #expect(output.hasSuffix("done\n"), "\(label) on \(who): \(output)")
            let dispatched = try #require(run.dispatchedAt, "\(label) on \(who) has no dispatch time")
            let started = try #require(run.startedAt, "\(label) on \(who) has no start time")
            let finished = try #require(run.finishedAt, "\(label) on \(who) has no finish time")
            #expect(
                run.createdAt <= dispatched && dispatched <= started && started <= finished,
                "\(label) on \(who): created \(run.createdAt) dispatched \(dispatched) started \(started) finished \(finished)")
            // In the manager's time, which is ours: none of them 2 h off.
            #expect(
                before - 5_000 <= run.createdAt && finished <= after + 5_000,
                "\(label) on \(who): created \(run.createdAt) finished \(finished), outside [\(before), \(after)]")
        }
    }

    /// Every agent eventually shows a measured skew within the tolerance of its shift.
    static func expectSkews(_ cluster: Cluster, _ expected: [String: Int], names: [String: String]) async throws {
        var last: [String: Int64?] = [:]
        let deadline = ContinuousClock.now + .seconds(TestTime.scaled(60))
        while ContinuousClock.now < deadline {
            guard let agents = try? await cluster.agents() else {
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            last = Dictionary(uniqueKeysWithValues: agents.map { (names[$0.id] ?? $0.id, $0.clockSkewMillis) })
            let done = expected.allSatisfy { name, seconds in
                guard let skew = last[name] ?? nil else { return false }
                return abs(skew - Int64(seconds) * 1000) <= tolerance
            }
            if done { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        for (name, seconds) in expected {
            let skew = last[name] ?? nil
            #expect(skew.map { abs($0 - Int64(seconds) * 1000) <= tolerance } == true, "\(name): skew \(String(describing: skew)) ms, shift \(seconds) s")
        }
    }

    /// Starts the primary (highest priority) alone and waits until it holds the lease, then the members.
    static func zone(
        _ cluster: Cluster, library: String, primary: (name: String, shift: Int),
        members: [(name: String, shift: Int, viaPeers: [String]?, priority: Int)]
    ) async throws -> [String: String] {
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        var ids: [String: String] = [:]
        let startedAt = Date()
        ids[primary.name] = try await cluster.startAgent(
            primary.name, zone: "z", extraArguments: ["--priority", "100"], environment: shifted(primary.shift, library: library))
        try await eventually(30, "\(primary.name) holds the lease") { try await Self.zone(cluster).primary == ids[primary.name] }
        for member in members {
            ids[member.name] = try await cluster.startAgent(
                member.name, zone: "z", viaPeers: member.viaPeers, extraArguments: ["--priority", "\(member.priority)"],
                environment: shifted(member.shift, library: library))
        }
        expectShifted(cluster, primary.name, by: primary.shift, startedAt: startedAt)
        for member in members { expectShifted(cluster, member.name, by: member.shift, startedAt: startedAt) }
        try await eventually(30, "every agent is online") {
            let agents = try await cluster.agents()
            return agents.count == ids.count && agents.allSatisfy { $0.status == .online }
        }
        return ids
    }

    /// A task on each agent, then one on all of them.
    static func runEverywhere(_ cluster: Cluster, ids: [String: String], label: String) async throws {
        let names = Dictionary(uniqueKeysWithValues: ids.map { ($0.value, $0.key) })
        for (name, id) in ids.sorted(by: { $0.key < $1.key }) {
            try await runAndCheck(cluster, .agent(id), names: names, expectedRuns: 1, label: "\(label)-\(name)")
        }
        try await runAndCheck(cluster, .everyAgent, names: names, expectedRuns: ids.count, label: "\(label)-all")
    }

    @Test func skewedSecondariesWorkUnderAPrimaryWithTheRightClock() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        let library = try await Self.shiftLibrary(in: cluster.directory)
        let ids = try await Self.zone(
            cluster, library: library, primary: ("right", 0),
            members: [("ahead", Self.shift, nil, 10), ("behind", -Self.shift, ["right", "ahead"], 0)])
        try await Self.runEverywhere(cluster, ids: ids, label: "a")
        #expect(try await Self.zone(cluster).primary == ids["right"])
        let names = Dictionary(uniqueKeysWithValues: ids.map { ($0.value, $0.key) })
        try await Self.expectSkews(cluster, ["right": 0, "ahead": Self.shift, "behind": -Self.shift], names: names)

        // Restarted, the member 2 h behind without a manager route (its identity stored, the manager's time
        // not yet heard) finds the primary again and works.
        await cluster.agents["behind"]?.stop()
        try await cluster.startAgent(
            "behind", zone: "z", viaPeers: ["right", "ahead"], environment: Self.shifted(-Self.shift, library: library))
        try await Self.runAndCheck(
            cluster, .agent(try #require(ids["behind"])), names: names, expectedRuns: 1, label: "restarted-behind")
    }

    @Test func aSkewedPrimaryLeadsMembersWithTheRightClockAndTheOppositeSkewAndFailsOverToAnother() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        let library = try await Self.shiftLibrary(in: cluster.directory)
        // `behind` is the only other member with a manager route: it takes over when `ahead` dies.
        let ids = try await Self.zone(
            cluster, library: library, primary: ("ahead", Self.shift),
            members: [("behind", -Self.shift, nil, 10), ("right", 0, ["ahead", "behind"], 0)])
        let names = Dictionary(uniqueKeysWithValues: ids.map { ($0.value, $0.key) })
        try await Self.runEverywhere(cluster, ids: ids, label: "b")
        #expect(try await Self.zone(cluster).primary == ids["ahead"])
        try await Self.expectSkews(cluster, ["right": 0, "ahead": Self.shift, "behind": -Self.shift], names: names)

        // The primary 2 h ahead dies; the member 2 h behind takes the lease and leads.
        let old = try await Self.zone(cluster)
        await cluster.agents["ahead"]?.kill9()
        try await eventually(30, "behind takes the lease") {
            let zone = try await Self.zone(cluster)
            return zone.primary == ids["behind"] && zone.leaseEpoch > old.leaseEpoch
        }
        for name in ["behind", "right"] {
            try await Self.runAndCheck(
                cluster, .agent(try #require(ids[name])), names: names, expectedRuns: 1, label: "failover-\(name)")
        }
        // The old primary comes back (its identity stored, the manager's time not yet heard) and works as a secondary.
        try await cluster.startAgent("ahead", zone: "z", extraArguments: ["--priority", "100"], environment: Self.shifted(Self.shift, library: library))
        try await Self.runAndCheck(
            cluster, .agent(try #require(ids["ahead"])), names: names, expectedRuns: 1, label: "rejoined-ahead")
        #expect(try await Self.zone(cluster).primary == ids["behind"])
    }
}
