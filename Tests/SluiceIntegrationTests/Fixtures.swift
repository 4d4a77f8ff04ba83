import Foundation
import SluiceTestSupport
import Testing

/// Builds a config with one tcp listener in front of one tcp group.
func tcpConfig(listen: String, targets: [(address: String, weight: Int)], algorithm: String = "round_robin",
               listenerExtra: [String] = [], nodeExtra: [String] = [], groupExtra: [String] = ["health_check: off"],
               workers: Int = 1) -> String {
    var lines = [
        "node:",
        "  workers: \(workers)",
        "  shutdown_grace: 10s",
    ]
    lines += nodeExtra.map { "  " + $0 }
    lines += [
        "listeners:",
        "  - name: front",
        "    protocol: tcp",
        "    bind: \"\(listen)\"",
        "    default: { forward: pool }",
    ]
    lines += listenerExtra.map { "    " + $0 }
    lines += [
        "target_groups:",
        "  - name: pool",
        "    protocol: tcp",
        "    algorithm: \(algorithm)",
    ]
    lines += groupExtra.map { "    " + $0 }
    lines += [
        "    targets:",
    ]
    lines += targets.map { "      - { address: \"\($0.address)\", weight: \($0.weight) }" }
    return lines.joined(separator: "\n") + "\n"
}

/// Connects through the proxy and reads the backend's name line.
func reachedBackend(port: UInt16) throws -> String {
    let fd = try TestSocket.connect(port: port)
    defer { close(fd) }
    let bytes = try TestSocket.receiveAll(fd)
    return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Sends `payload` through an open connection to an echo target while reading the echo on
/// another thread; returns what came back after the sender half-closed.
func echoRoundTrip(_ fd: Int32, _ payload: [UInt8]) throws -> [UInt8] {
    let sendError = SendBox()
    let sender = Thread {
        do {
            try TestSocket.sendAll(fd, payload)
            TestSocket.shutdownWrite(fd)
        } catch {
            sendError.set("\(error)")
        }
    }
    sender.start()
    let echoed = try TestSocket.receiveAll(fd)
    if let e = sendError.value { throw TestSocket.Failure("send failed: \(e)") }
    return echoed
}

/// `sluicectl events --json` against a daemon, its output collected on a thread of its own.
final class CtlEventStream {
    let process = Process()
    let output = SendBox()

    init(_ d: SluicedProcess) throws {
        process.executableURL = URL(fileURLWithPath: sluicectlPath)
        process.arguments = ["events", "--json", "--socket", d.controlSocket]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let output = self.output
        Thread {
            var text = ""
            while true {
                let data = out.fileHandleForReading.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
                output.set(text)
            }
        }.start()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    var text: String { output.value ?? "" }

    /// The events so far, decoded.
    var events: [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Registers a new address of `group` each round until a `registration` event shows: the
    /// stream starts asynchronously, and registering one address again is no event.
    func waitUntilOn(_ d: SluicedProcess, group: String, seconds: Double = 10) throws -> Bool {
        var round = 0
        return try poll(seconds) {
            round += 1
            let registered = try ctl(d, ["targets", "register", group, "127.0.0.1:\(20000 + round)"])
            #expect(registered.status == 0, "\(registered.output)")
            return text.contains("\"registration\"")
        }
    }

    /// SIGINT, as a user's Ctrl-C; the exit status.
    func interrupt() -> Int32 {
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

final class SendBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var text: String?
    func set(_ s: String) { lock.withLock { text = s } }
    var value: String? { lock.withLock { text } }
}
