import ArgumentParser
struct DispatchBench: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "dispatch") }
