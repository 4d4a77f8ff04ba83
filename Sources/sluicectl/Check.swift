import ArgumentParser
import Foundation
import SluiceConfig

extension SluiceCtl {
    /// `sluicectl check [--config F]`: validates a configuration file without a daemon.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file without a daemon.",
            discussion: """
                Loads the file as sluiced would and reports every problem, one per line on stderr, \
                as FILE:LINE:COLUMN: KEY-PATH: MESSAGE. Exits 0 when the file is valid, 1 otherwise. \
                Same as `sluiced --check --config F`; no daemon is contacted.
                """)

        @Option(name: .long, help: ArgumentHelp("Configuration file.", valueName: "file"), completion: .file())
        var config: String = "/etc/sluice/sluice.yaml"

        @OptionGroup var global: GlobalOptions

        /// The `--json` answer: the same shape for a valid and an invalid file.
        struct Result: Encodable {
            struct Problem: Encodable {
                var file: String
                var line: Int
                var column: Int
                var path: String
                var message: String
            }
            var file: String
            var ok: Bool
            var listeners: Int?
            var targetGroups: Int?
            var errors: [Problem]

            enum CodingKeys: String, CodingKey {
                case file, ok, listeners, errors
                case targetGroups = "target_groups"
            }
        }

        func run() throws {
            let cfg: Config
            do {
                cfg = try ConfigLoader.load(path: config)
            } catch {
                if global.json {
                    let problems = error.errors.map {
                        Result.Problem(file: $0.file, line: $0.line, column: $0.column, path: $0.path, message: $0.message)
                    }
                    print(JSON.pretty(try JSON.encode(Result(file: config, ok: false, errors: problems))))
                }
                for e in error.errors { printError(e.description) }
                throw CtlFailure.failed
            }
            if global.json {
                let result = Result(
                    file: config, ok: true, listeners: cfg.listeners.count, targetGroups: cfg.targetGroups.count,
                    errors: [])
                print(JSON.pretty(try JSON.encode(result)))
            } else {
                print("\(config): ok (\(cfg.listeners.count) listeners, \(cfg.targetGroups.count) target groups)")
            }
        }
    }
}
