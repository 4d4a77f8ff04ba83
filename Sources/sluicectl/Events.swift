#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import ArgumentParser
import Foundation
import SluiceControl

extension SluiceCtl {
    /// `sluicectl events [--group G]`: follows `GET /v1/events` until the stream ends or SIGINT; its
    /// subcommands `failed` and `redeliver ID` manage the event rules' dead letters (SPEC §13).
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow the daemon's events until interrupted; list and redeliver failed event deliveries.",
            discussion: """
                Streams GET /v1/events: target state changes, registrations, deregistrations and \
                drains, reloads, and groups failing open. Each event prints as one line: \
                TIME TYPE GROUP TARGET STATE REASON [MESSAGE]. With --json each event prints as one \
                compact JSON object per line (NDJSON, keys sorted), for `jq` and log shippers.

                Runs until the daemon ends the stream or you press Ctrl-C (exit 0).

                `sluicectl events failed` lists the event rules' dead letters; `sluicectl events \
                redeliver ID` sends one again.
                """,
            subcommands: [EventsFailed.self, EventsRedeliver.self])

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

    /// `sluicectl events failed`: `GET /v1/events/failed`.
    struct EventsFailed: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "failed",
            abstract: "List events that failed every delivery attempt (the dead letters).",
            discussion: """
                Reads GET /v1/events/failed: one row per dead letter with the event id, the rule, the \
                event type, the attempts made and the last error. `sluicectl events redeliver ID` \
                sends one again. With --json, prints the answer as the daemon sent it.
                """)

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let answer = try global.call("GET", "/v1/events/failed")
            if global.printJSONIfAsked(answer.body) { return }
            let failed = try decodeAnswer(FailedEvents.self, answer.body, socket: global.socketPath)
            print(Self.table(failed), terminator: "")
        }

        static func table(_ failed: FailedEvents) -> String {
            var table = Table([("ID", .left), ("RULE", .left), ("TYPE", .left), ("ATTEMPTS", .right), ("ERROR", .left)])
            for f in failed.failed {
                table.append([f.id, f.rule, f.event.type, String(f.attempts), f.error])
            }
            return table.render()
        }
    }

    /// `sluicectl events redeliver ID`: `POST /v1/events/failed/{id}/redeliver`.
    struct EventsRedeliver: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redeliver",
            abstract: "Deliver a failed event again, with fresh attempts.",
            discussion: """
                Appends the dead letter ID (an event id from `sluicectl events failed`) to its rule's \
                outbox again and removes it from the dead letters. Exit 1 with the daemon's message \
                when refused (e.g. no failed event has that id).
                """)

        @Argument(help: ArgumentHelp("The event id.", valueName: "id"))
        var id: String

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if id.isEmpty { throw ValidationError("redeliver needs an event id") }
        }

        static func path(id: String) -> String { "/v1/events/failed/" + Arguments.pathSegment(id) + "/redeliver" }

        func run() throws {
            let answer = try global.call("POST", Self.path(id: id))
            if global.printJSONIfAsked(answer.body) { return }
            print("redelivering \(id)")
        }
    }
}
