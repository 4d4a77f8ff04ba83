#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import ArgumentParser
import Foundation
import SluiceControl

/// Options every command takes: where the daemon is and how to print its answers.
struct GlobalOptions: ParsableArguments {
    static let builtInSocket = "/run/sluice/control.sock"

    /// `$SLUICE_SOCKET` when set and not empty, else `/run/sluice/control.sock`.
    static var defaultSocket: String {
        if let env = getenv("SLUICE_SOCKET") {
            let value = String(cString: env)
            if !value.isEmpty { return value }
        }
        return builtInSocket
    }

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The daemon's control socket (default: $SLUICE_SOCKET, else \(GlobalOptions.builtInSocket)).",
            valueName: "path"),
        completion: .file())
    var socket: String?

    @Flag(name: .long, help: "Print the daemon's JSON answer (pretty-printed, keys sorted) instead of a table.")
    var json = false

    var socketPath: String { socket ?? Self.defaultSocket }

    func client(timeout: Duration? = ControlClient.defaultTimeout) -> ControlClient {
        ControlClient(socketPath: socketPath, timeout: timeout)
    }

    /// Sends a request and returns the 2xx answer's body; a refusal or an unreachable daemon throws
    /// `CtlFailure`.
    func call(
        _ method: String, _ path: String, body: Data? = nil, timeout: Duration? = ControlClient.defaultTimeout
    ) throws(CtlFailure) -> (status: Int, body: Data) {
        let answer: (status: Int, body: Data)
        do {
            answer = try client(timeout: timeout).request(method: method, path: path, body: body)
        } catch {
            throw .unreachable(error)
        }
        guard (200..<300).contains(answer.status) else {
            throw CtlFailure.refusal(status: answer.status, body: Array(answer.body))
        }
        return answer
    }

    /// Prints the body pretty when `--json` is given; returns whether it did.
    func printJSONIfAsked(_ body: Data) -> Bool {
        guard json else { return false }
        print(JSON.pretty(body))
        return true
    }
}

/// Decodes a 2xx answer, or fails as a bad answer from the daemon (exit 1).
func decodeAnswer<T: Decodable>(_ type: T.Type, _ body: Data, socket: String) throws(CtlFailure) -> T {
    do {
        return try JSON.decode(type, from: body)
    } catch {
        throw .unreachable(.badResponse(socket: socket, reason: "cannot read the answer as \(T.self): \(error)"))
    }
}
