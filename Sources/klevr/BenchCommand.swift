import ArgumentParser
import KlevrBench

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (figures go to BENCHMARKS.md).", subcommands: [DispatchBench.self, FailoverBench.self, RelayBench.self, LoginFloodBench.self, CronBench.self])
}

/// `klevr bench dispatch`: see ``DispatchBenchmark``.
struct DispatchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "Measure dispatch latency (task created → run started on its agent) and fan-out time.",
        discussion: "The last line is: dispatch_latency_ms p50=<x> p99=<y> agents=<N> tasks=<M>")

    @Option(help: "Simulated agents.") var agents = 100
    @Option(help: "Tasks, each for one agent, created one after another.") var tasks = 100
    @Option(help: "Milliseconds between task creations.") var gap = 10

    func validate() throws {
        guard (1...20_000).contains(agents) else { throw ValidationError("--agents must be 1 to 20000") }
        guard (1...100_000).contains(tasks) else { throw ValidationError("--tasks must be 1 to 100000") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: "error")
        do {
            try await DispatchBenchmark(agents: agents, tasks: tasks, gap: gap).run()
        } catch let error as BenchError {
            throw CLIError(error.description)
        }
    }
}

/// `klevr bench relay`: see ``RelayBenchmark``.
struct RelayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Measure dispatch, fan-out and idle cost through a zone primary with N simulated members.",
        discussion: """
            The last line is: relay members=<N> dispatch_p50_ms=<a> dispatch_p99_ms=<b> fanout_ms=<c> results_ms=<d> \
            idle_manager_tx_per_s=<e> idle_primary_cpu_pct=<f>
            idle_manager_tx_per_s counts every database access of the manager (each transaction and each read).
            """)

    @Option(help: "Simulated members.") var members = 100
    @Option(help: "Tasks for one member each, created one after another.") var tasks = 100
    @Option(help: "Milliseconds between those tasks.") var gap = 20
    @Option(help: "Seconds of idle measurement.") var idleSeconds = 10

    func validate() throws {
        guard (1...5_000).contains(members) else { throw ValidationError("--members must be 1 to 5000") }
        guard (1...10_000).contains(tasks) else { throw ValidationError("--tasks must be 1 to 10000") }
        guard (1...600).contains(idleSeconds) else { throw ValidationError("--idle-seconds must be 1 to 600") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: "error")
        do {
            try await RelayBenchmark(members: members, tasks: tasks, gap: gap, idleSeconds: idleSeconds).run()
        } catch let error as BenchError {
            throw CLIError(error.description)
        }
    }
}

/// `klevr bench failover`: see ``FailoverBenchmark``.
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Measure primary failover: kill -9 of the primary → new primary holding the lease and dispatching.",
        discussion: "The last line is: failover_ms p50=<x> max=<y> trials=<K>")

    @Option(help: "Trials (each kills the current primary once).") var trials = 10
    @Option(help: "Agents in the zone (3 to 5).") var agents = 3

    func validate() throws {
        guard (1...100).contains(trials) else { throw ValidationError("--trials must be 1 to 100") }
        guard (3...5).contains(agents) else { throw ValidationError("--agents must be 3 to 5") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: "error")
        do {
            try await FailoverBenchmark(trials: trials, agents: agents).run()
        } catch let error as BenchError {
            throw CLIError(error.description)
        }
    }
}

/// `klevr bench logins`: see ``LoginFloodBenchmark``.
struct LoginFloodBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logins",
        abstract: "Manager memory under a flood of failed logins with huge and with distinct user names.",
        discussion: "The last line is: login_flood rss_before_kib=<a> rss_after_kib=<b> hwm_kib=<c> statuses=<...>")

    @Option(help: "Failed logins with huge names.") var count = 10_000
    @Option(help: "Bytes in each huge user name.") var nameBytes = 65_536
    @Option(help: "Failed logins with distinct short names, afterwards.") var distinct = 10_000
    @Option(help: "Requests in flight at once.") var concurrency = 16

    func validate() throws {
        guard (1...1_000_000).contains(count), (0...1_000_000).contains(distinct) else { throw ValidationError("--count/--distinct out of range") }
        guard (1...(16 << 20)).contains(nameBytes) else { throw ValidationError("--name-bytes must be 1 to 16 MiB") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 256") }
    }

    func run() async throws {
        do {
            try await LoginFloodBenchmark(count: count, nameBytes: nameBytes, distinct: distinct, concurrency: concurrency).run()
        } catch let error as BenchError {
            throw CLIError(error.description)
        }
    }
}

/// `klevr bench cron`: see ``CronBenchmark``.
struct CronBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron",
        abstract: "Measure how late recurring tasks fire: N tasks firing every minute, for some minutes.",
        discussion: "The last line is: cron tasks=<N> minutes=<M> occurrences=<n> expected=<N*M> lateness_ms p50=<a> p99=<b> max=<c>")

    @Option(help: "Recurring tasks, each firing every minute.") var tasks = 1_000
    @Option(help: "Minute boundaries to measure.") var minutes = 2

    func validate() throws {
        guard (1...20_000).contains(tasks) else { throw ValidationError("--tasks must be 1 to 20000") }
        guard (1...30).contains(minutes) else { throw ValidationError("--minutes must be 1 to 30") }
    }

    func run() async throws {
        LogSetup.bootstrap(level: "error")
        do {
            try await CronBenchmark(tasks: tasks, minutes: minutes).run()
        } catch let error as BenchError {
            throw CLIError(error.description)
        }
    }
}
