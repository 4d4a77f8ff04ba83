import ArgumentParser
import SluiceConfig

/// `sluicectl`: the operator's CLI. This version offers `check`; the commands that talk to
/// the control socket arrive with the control plane.
@main
struct SluiceCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluicectl",
        abstract: "Control and inspect a running sluiced.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a configuration file without a daemon.")

        @Option(name: .long, help: "Configuration file.")
        var config: String = "/etc/sluice/sluice.yaml"

        func run() throws {
            do {
                let cfg = try ConfigLoader.load(path: config)
                print("\(config): ok (\(cfg.listeners.count) listeners, \(cfg.targetGroups.count) target groups)")
            } catch {
                for e in error.errors { print(e.description) }
                throw ExitCode(1)
            }
        }
    }
}
