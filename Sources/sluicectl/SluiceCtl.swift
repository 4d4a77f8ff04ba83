import ArgumentParser
import SluiceConfig

/// `sluicectl`: the operator's CLI (SPEC §7). Every command but `check` talks to the daemon's
/// control socket (SPEC §6).
///
/// Exit codes: 0 success; 1 the daemon refused the request or sent an unreadable answer; 2 usage
/// error; 3 the daemon cannot be reached.
@main
struct SluiceCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluicectl",
        abstract: "Control and inspect a running sluiced.",
        discussion: """
            Every command except `check` talks to sluiced over its control socket \
            (--socket PATH, else $SLUICE_SOCKET, else /run/sluice/control.sock). Human-readable \
            tables by default; --json prints the daemon's JSON answer for scripts.

            Exit codes: 0 success; 1 the daemon refused the request (the error is printed on \
            stderr as "error: CODE: MESSAGE") or sent an answer sluicectl cannot read; 2 usage \
            error; 3 the daemon cannot be reached.
            """,
        subcommands: [Status.self, Targets.self, Nodes.self, Events.self, Scale.self, Scaling.self, Reload.self, Check.self]
    )

    /// Like ArgumentParser's `main`, with SPEC §7's exit codes: usage errors exit 2 (not EX_USAGE,
    /// 64), refusals 1, an unreachable daemon 3.
    static func main() {
        do {
            var command = try parseAsRoot(Arguments.hoistingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let failure as CtlFailure {
            let message = failure.description
            if !message.isEmpty { printError(message) }
            exit(withError: ExitCode(failure.exitCode))
        } catch {
            let code = ExitStatus.code(for: error)
            if code == ExitStatus.usage {
                printError(fullMessage(for: error))
                exit(withError: ExitCode(code))
            }
            exit(withError: error)
        }
    }
}
