import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A new access-log path in the temporary directory (removed by the caller).
private func logPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("sluice-l4log-\(UUID().uuidString).log").path
}

/// The JSON objects written to `path` so far (none while the file does not exist).
private func logLines(_ path: String) -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").map { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? ["unparsed": String(line)]
    }
}

/// Waits up to 5 s for `count` lines in the log at `path` and returns them.
private func waitForLines(_ path: String, count: Int) throws -> [[String: Any]] {
    var lines: [[String: Any]] = []
    try waitFor("\(count) access-log line(s) in \(path)", seconds: 5) {
        lines = logLines(path)
        return lines.count >= count
    }
    return lines
}

/// Access logs of L4 listeners (SPEC §8): one JSON line per TCP connection and per UDP flow,
/// written when it ends.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct L4AccessLogTests {
    @Test func aTCPConnectionLogsOneLine() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)],
                                                   listenerExtra: ["access_log: \(log)"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        let clientPort = TestSocket.localPort(fd)
        try TestSocket.sendAll(fd, Array("twelve bytes".utf8))
        TestSocket.shutdownWrite(fd)
        #expect(String(decoding: try TestSocket.receiveAll(fd), as: UTF8.self) == "twelve bytes")
        close(fd)
        let lines = try waitForLines(log, count: 1)
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line["listener"] as? String == "front")
        #expect(line["protocol"] as? String == "tcp")
        #expect(line["client"] as? String == "127.0.0.1")
        #expect(line["client_port"] as? Int == Int(clientPort))
        #expect(line["group"] as? String == "pool")
        #expect(line["target"] as? String == "127.0.0.1:\(echo.port)")
        #expect(line["bytes_in"] as? Int == 12)
        #expect(line["bytes_out"] as? Int == 12)
        #expect(line["end"] as? String == "closed")
        let duration = try #require(line["duration_ms"] as? Double)
        #expect(duration >= 0 && duration < 10_000)
        let time = try #require(line["time_ms"] as? Double)
        #expect(abs(time / 1000 - Date().timeIntervalSince1970) < 60, "\(line)")
    }

    @Test func aConnectionAnEmptyGroupRefusesLogsItsEnd() throws {
        let port = try TestSocket.freePort()
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let yaml = tcpConfig(listen: "127.0.0.1:\(port)", targets: [], listenerExtra: ["access_log: \(log)"])
            .replacingOccurrences(of: "    targets:\n", with: "    targets: []\n")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        #expect(try TestSocket.receiveAll(fd).isEmpty)
        close(fd)
        let line = try #require(try waitForLines(log, count: 1).first)
        #expect(line["end"] as? String == "no_target", "\(line)")
        #expect(line["group"] as? String == "pool")
        #expect(line["target"] is NSNull, "\(line)")
        #expect(line["bytes_in"] as? Int == 0)
        #expect(line["bytes_out"] as? Int == 0)
    }

    @Test func aTargetThatRefusesLogsConnectFailed() throws {
        let port = try TestSocket.freePort()
        let closed = try TestSocket.freePort()  // nothing listens there
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(closed)", 1)],
                                                   listenerExtra: ["access_log: \(log)"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        _ = try? TestSocket.receiveAll(fd)
        close(fd)
        let line = try #require(try waitForLines(log, count: 1).first)
        #expect(line["end"] as? String == "connect_failed", "\(line)")
        #expect(line["target"] is NSNull, "\(line)")
    }

    /// `accept_proxy_protocol`: the line names the client the PROXY header carried, and a
    /// connection without a valid header ends as `proxy_header_invalid`.
    @Test func theProxyCarriedClientIsLogged() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)],
                                                   listenerExtra: ["accept_proxy_protocol: true", "access_log: \(log)"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        try TestSocket.sendAll(fd, Array("PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\nabc".utf8))
        TestSocket.shutdownWrite(fd)
        #expect(try TestSocket.receiveAll(fd) == Array("abc".utf8))
        close(fd)
        let line = try #require(try waitForLines(log, count: 1).first)
        #expect(line["client"] as? String == "203.0.113.9", "\(line)")
        #expect(line["client_port"] as? Int == 5555)
        #expect(line["bytes_in"] as? Int == 3, "the header is not payload")
        #expect(line["end"] as? String == "closed")
        let bad = try TestSocket.connect(port: port)
        try TestSocket.sendAll(bad, Array("GET / HTTP/1.1\r\n\r\n".utf8))
        _ = try? TestSocket.receiveAll(bad)
        close(bad)
        let lines = try waitForLines(log, count: 2)
        #expect(lines.last?["end"] as? String == "proxy_header_invalid", "\(lines)")
        #expect(lines.last?["client"] as? String == "127.0.0.1")
        #expect(lines.last?["target"] is NSNull)
    }

    /// Two listeners share one file; the one with `access_log: off` adds nothing to it.
    @Test func accessLogOffWritesNothing() throws {
        let echo = try TCPBackend(mode: .echo)
        let (logged, silent) = (try TestSocket.freePort(), try TestSocket.freePort())
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let yaml = tcpConfig(listen: "127.0.0.1:\(logged)", targets: [("127.0.0.1:\(echo.port)", 1)],
                             listenerExtra: ["access_log: \(log)"])
            .replacingOccurrences(of: "target_groups:\n", with: """
                  - name: quiet
                    protocol: tcp
                    bind: "127.0.0.1:\(silent)"
                    default: { forward: pool }
                    access_log: off
                target_groups:

                """)
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        for port in [silent, logged] {
            let fd = try TestSocket.connect(port: port)
            try TestSocket.sendAll(fd, Array("x".utf8))
            TestSocket.shutdownWrite(fd)
            #expect(try TestSocket.receiveAll(fd) == Array("x".utf8))
            close(fd)
        }
        // One worker: the quiet connection closed (its client saw the FIN sent as it closed)
        // before the logged one opened, so a line of its own would come first in the file.
        let lines = try waitForLines(log, count: 1)
        #expect(lines.count == 1)
        #expect(lines.first?["listener"] as? String == "front", "\(lines)")
    }

    /// A UDP flow logs its line when it expires (`idle_timeout: 1s`).
    @Test func aUDPFlowLogsWhenItExpires() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:\(a.port)"],
                                                   listenerExtra: ["idle_timeout: 1s", "access_log: \(log)"]))
        defer { d.terminate() }
        let c = try UDPClient(port: port)
        #expect(try c.exchange(Array("ping".utf8)) == Array("a|ping".utf8))
        #expect(try c.exchange(Array("pong!".utf8)) == Array("a|pong!".utf8))
        #expect(logLines(log).isEmpty, "nothing before the flow ends")
        let line = try #require(try waitForLines(log, count: 1).first)
        #expect(line["listener"] as? String == "dns")
        #expect(line["protocol"] as? String == "udp")
        #expect(line["client"] as? String == "127.0.0.1")
        #expect(line["client_port"] as? Int == Int(c.localPort))
        #expect(line["group"] as? String == "dns")
        #expect(line["target"] as? String == "127.0.0.1:\(a.port)")
        #expect(line["bytes_in"] as? Int == 9)
        #expect(line["bytes_out"] as? Int == 13, "\(line)")
        #expect(line["end"] as? String == "idle_timeout")
        #expect((line["duration_ms"] as? Double ?? 0) >= 900, "\(line)")
    }

    /// A tls listener logs `"protocol": "tls"` (a tcp listener in front reaches it through a
    /// tls group), and a client that does not speak TLS ends as `tls_handshake_failed`.
    @Test func tlsListenersLogTheirConnections() throws {
        let echo = try TCPBackend(mode: .echo)
        let (front, inner) = (try TestSocket.freePort(), try TestSocket.freePort())
        let log = logPath()
        defer { try? FileManager.default.removeItem(atPath: log) }
        let yaml = try tlsChainConfig(front: front, inner: inner, echo: echo.port, innerExtra: ["access_log: \(log)"])
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: front)
        try TestSocket.sendAll(fd, Array("hello".utf8))
        TestSocket.shutdownWrite(fd)
        #expect(try TestSocket.receiveAll(fd) == Array("hello".utf8))
        close(fd)
        let line = try #require(try waitForLines(log, count: 1).first)
        #expect(line["listener"] as? String == "inner")
        #expect(line["protocol"] as? String == "tls")
        #expect(line["target"] as? String == "127.0.0.1:\(echo.port)")
        #expect(line["bytes_in"] as? Int == 5)
        #expect(line["bytes_out"] as? Int == 5)
        #expect(line["end"] as? String == "closed", "\(line)")
        let plain = try TestSocket.connect(port: inner)
        try TestSocket.sendAll(plain, Array("GET / HTTP/1.1\r\n\r\n".utf8))
        _ = try? TestSocket.receiveAll(plain)
        close(plain)
        let lines = try waitForLines(log, count: 2)
        #expect(lines.last?["end"] as? String == "tls_handshake_failed", "\(lines)")
        #expect(lines.last?["target"] is NSNull, "\(lines)")
    }
}
