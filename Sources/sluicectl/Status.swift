import ArgumentParser
import Foundation
import SluiceControl

extension SluiceCtl {
    /// `sluicectl status`: `GET /v1/status`.
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the daemon's version, uptime, zone, workers, configuration and connections.",
            discussion: "Reads GET /v1/status. With --json, prints the answer as the daemon sent it.")

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let answer = try global.call("GET", "/v1/status")
            if global.printJSONIfAsked(answer.body) { return }
            let status = try decodeAnswer(StatusInfo.self, answer.body, socket: global.socketPath)
            print(Render.status(status), terminator: "")
        }
    }

    /// `sluicectl nodes`: `GET /v1/nodes`.
    struct Nodes: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the fleet's live nodes with zone, version and plan generation.",
            discussion: """
                Reads GET /v1/nodes. A node without a registry (SPEC §10) is a fleet of one and lists \
                itself. With --json, prints the answer as the daemon sent it.
                """)

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let answer = try global.call("GET", "/v1/nodes")
            if global.printJSONIfAsked(answer.body) { return }
            let nodes = try decodeAnswer(NodesInfo.self, answer.body, socket: global.socketPath)
            print(Render.nodes(nodes), terminator: "")
        }
    }

    /// `sluicectl reload`: `POST /v1/reload`.
    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-read the daemon's configuration file.",
            discussion: """
                Asks sluiced to re-read its configuration file (as SIGHUP does) and prints the result. \
                A file with any error is never applied: the errors are printed on stderr, the running \
                configuration stays, and the exit code is 1.
                """)

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let answer: (status: Int, body: Data)
            do {
                // A reload resolves host names and reads certificates: allow it more than the default.
                answer = try global.client(timeout: .seconds(120)).request(method: "POST", path: "/v1/reload")
            } catch {
                throw CtlFailure.unreachable(error)
            }
            // The daemon answers a rejected reload with 409 and a ReloadResult; other refusals carry
            // the usual error body.
            guard let result = try? JSON.decode(ReloadResult.self, from: answer.body) else {
                if (200..<300).contains(answer.status) {
                    _ = try decodeAnswer(ReloadResult.self, answer.body, socket: global.socketPath)
                }
                throw CtlFailure.refusal(status: answer.status, body: Array(answer.body))
            }
            let text = Render.reload(result)
            if !global.printJSONIfAsked(answer.body) { print(text.stdout, terminator: "") }
            if !result.ok {
                printError(String(text.stderr.dropLast()))
                throw CtlFailure.failed
            }
        }
    }
}
