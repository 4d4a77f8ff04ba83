import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A target that accepts one connection, reads a request head and then waits: the test
/// decides when it closes without answering.
final class SilentTarget: @unchecked Sendable {
    // @unchecked: `listenFd` is fixed; the accepted descriptor is behind the semaphore.
    let port: UInt16
    private let listenFd: Int32
    private let headRead = DispatchSemaphore(value: 0)
    private let box = SendBox()
    private var accepted: Int32 = -1

    init() throws {
        (listenFd, port) = try TestSocket.listen()
        let t = Thread { [self] in
            let fd = accept(listenFd, nil, nil)
            guard fd >= 0 else { return }
            TestSocket.setTimeouts(fd, seconds: 30)
            var seen: [UInt8] = []
            var b = [UInt8](repeating: 0, count: 4096)
            while !seen.containsHeadEnd {
                let n = recv(fd, &b, b.count, 0)
                if n <= 0 { break }
                seen += b[0..<n]
            }
            box.set(String(decoding: seen, as: UTF8.self))
            accepted = fd
            headRead.signal()
        }
        t.start()
    }

    /// Waits until a request head arrived; returns it.
    func waitForHead(seconds: Double = 10) throws -> String {
        guard headRead.wait(timeout: .now() + seconds) == .success else {
            throw TestSocket.Failure("no request reached the silent target")
        }
        return box.value ?? ""
    }

    /// Closes the accepted connection without answering (after `waitForHead`).
    func hangUp() {
        if accepted >= 0 { close(accepted) }
        accepted = -1
    }

    deinit {
        hangUp()
        close(listenFd)
    }
}

extension [UInt8] {
    fileprivate var containsHeadEnd: Bool {
        count >= 4 && (0...(count - 4)).contains { self[$0] == 13 && self[$0 + 1] == 10 && self[$0 + 2] == 13 && self[$0 + 3] == 10 }
    }
}

/// Requests that straddle a Plan change (reload, registrations): indices kept from the old
/// Plan must never index the new one.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HTTPPlanChangeTests {
    private static func config(web: UInt16, b: UInt16?, target: UInt16, body: String, control: String) -> String {
        var lines = [
            "node:",
            "  workers: 1",
            "  shutdown_grace: 5s",
            "listeners:",
            "  - name: web",
            "    protocol: http",
            "    bind: \"127.0.0.1:\(web)\"",
            "    access_log: off",
            "    default: { respond: { status: 200, content_type: text/plain, body: \"\(body)\" } }",
        ]
        if let b {
            lines += [
                "  - name: b",
                "    protocol: http",
                "    bind: \"127.0.0.1:\(b)\"",
                "    access_log: off",
                "    retry_idempotent: true",
                "    default: { forward: app }",
            ]
        }
        lines += [
            "target_groups:",
            "  - name: app",
            "    protocol: http",
            "    health_check: off",
            "    targets:",
            "      - { address: \"127.0.0.1:\(target)\" }",
        ]
        return lines.joined(separator: "\n") + "\n" + control
    }

    @Test func aRetryAfterItsListenerWasRemovedAnswers503() throws {
        let silent = try SilentTarget()
        let web = try TestSocket.freePort()
        let b = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: Self.config(web: web, b: b, target: silent.port, body: "v1", control: ""))
        defer { d.terminate() }
        let control = "control:\n  socket: \(d.controlSocket)\n  state: \(d.statePath)\n"

        // A GET on listener b reaches the target, which says nothing yet.
        let client = try TestSocket.connect(port: b)
        defer { close(client) }
        try TestSocket.sendAll(client, Array("GET /x HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        _ = try silent.waitForHead()

        // Reload without listener b; `web` answering v2 shows the worker runs the new Plan.
        try Self.config(web: web, b: nil, target: silent.port, body: "v2", control: control)
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        let r = try ctl(d, ["reload"])
        #expect(r.status == 0, "\(r.output)")
        #expect(try get(web, "/").text == "v2")

        // The target hangs up without answering: the retry finds its listener gone.
        silent.hangUp()
        let bytes = try TestSocket.receiveAll(client)
        let answer = try #require(HTTPClient.parse(bytes).first, "\(String(decoding: bytes, as: UTF8.self))")
        #expect(answer.status == 503)
        #expect(answer.header("connection") == "close")
        #expect(d.isRunning)
        #expect(try get(web, "/").text == "v2", "the worker still serves")
    }

    @Test func aRetryWithNoTargetLeftAnswers502AtOnce() throws {
        // The only target reads the request and closes: the retry finds no other target. The
        // 502 must go out at once, not when the idle timeout (60 s) wakes the connection.
        let dead = try TCPBackend(mode: .closeAfterRead)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [dead.port])],
                                                    listener: ["retry_idempotent: true"]))
        defer { d.terminate() }
        let started = Date()
        let fd = try TestSocket.connect(port: port, timeoutSeconds: 5)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        let r = try #require(HTTPClient.parse(try TestSocket.receiveAll(fd)).first)
        #expect(r.status == 502)
        #expect(Date().timeIntervalSince(started) < 5)
    }
}
