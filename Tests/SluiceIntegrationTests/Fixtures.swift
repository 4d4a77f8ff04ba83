import Foundation
import SluiceTestSupport

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

final class SendBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var text: String?
    func set(_ s: String) { lock.withLock { text = s } }
    var value: String? { lock.withLock { text } }
}
