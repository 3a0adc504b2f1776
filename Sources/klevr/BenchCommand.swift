import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (figures go to BENCHMARKS.md).", subcommands: [DispatchBench.self, FailoverBench.self, RelayBench.self, LoginFloodBench.self])
}
