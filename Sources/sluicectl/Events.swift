#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import ArgumentParser
import Foundation
import SluiceControl

extension SluiceCtl {
    /// `sluicectl events [--group G]`: follows `GET /v1/events` until the stream ends or SIGINT.
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow the daemon's events until interrupted.",
            discussion: """
                Streams GET /v1/events: target state changes, registrations, deregistrations and \
                drains, reloads, and groups failing open. Each event prints as one line: \
                TIME TYPE GROUP TARGET STATE REASON [MESSAGE]. With --json each event prints as one \
                compact JSON object per line (NDJSON, keys sorted), for `jq` and log shippers.

                Runs until the daemon ends the stream or you press Ctrl-C (exit 0).
                """)

        @Option(name: .long, help: ArgumentHelp("Only events of this target group.", valueName: "group"))
        var group: String?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let group, group.isEmpty { throw ValidationError("--group needs a target group name") }
        }

        static func path(group: String?) -> String {
            guard let group else { return "/v1/events" }
            return "/v1/events?group=" + Arguments.pathSegment(group)
        }

        func run() throws {
            // Ctrl-C is the normal way to stop following: exit 0. Every line is flushed as it is
            // printed, so nothing is lost.
            signal(SIGINT) { _ in _exit(0) }
            // A parent may hand down a mask that blocks SIGINT (Foundation's Process does): unblock it.
            var interrupt = sigset_t()
            sigemptyset(&interrupt)
            sigaddset(&interrupt, SIGINT)
            sigprocmask(SIG_UNBLOCK, &interrupt, nil)
            let json = global.json
            let answer: (status: Int, body: Data)
            do {
                answer = try global.client(timeout: nil).streamLines(path: Self.path(group: group)) { line in
                    if json {
                        print(JSON.compact(line))
                    } else if let event = try? JSON.decode(ControlEvent.self, from: line) {
                        print(Render.event(event))
                    } else {
                        print(String(decoding: line, as: UTF8.self))
                    }
                    fflush(nil)
                }
            } catch {
                throw CtlFailure.unreachable(error)
            }
            guard (200..<300).contains(answer.status) else {
                throw CtlFailure.refusal(status: answer.status, body: Array(answer.body))
            }
        }
    }
}
