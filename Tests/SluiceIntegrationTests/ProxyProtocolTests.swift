import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

// PROXY protocol through the real `sluiced`: headers sent to targets checked byte for byte
// against HAProxy's proxy-protocol.txt, headers accepted from senders in front, and hostile
// senders closed and counted.

/// `Tests/Fixtures/proxy_target.py`: records the header each connection starts with, then
/// echoes (or answers `GET` with 200, for health checks).
final class ProxyTarget {
    let process: FixtureProcess
    var port: UInt16 { process.port }

    init(tls: Bool = false) throws {
        let args = tls ? ["--tls", try TestCerts.path("a.pem"), try TestCerts.path("a.key")] : []
        process = try FixtureProcess(script: "proxy_target.py", arguments: args)
    }

    /// The headers recorded so far, oldest first (empty for a connection without one).
    func headers() throws -> [[UInt8]] {
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("STATS\n".utf8))
        let body = try TestSocket.receiveAll(fd)
        let list = try JSONSerialization.jsonObject(with: Data(body)) as? [String] ?? []
        return list.map(hexBytes)
    }

    /// Waits until `count` headers were recorded and returns them.
    func waitForHeaders(_ count: Int) throws -> [[UInt8]] {
        var got: [[UInt8]] = []
        try waitUntil("the target recorded \(count) header(s)") {
            got = (try? headers()) ?? []
            return got.count >= count
        }
        return got
    }
}

private func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex, let j = s.index(i, offsetBy: 2, limitedBy: s.endIndex) {
        out.append(UInt8(s[i..<j], radix: 16) ?? 0)
        i = j
    }
    return out
}

private let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// A v2 PROXY header for TCP, built here from the spec's layout.
private func v2Header(source: String, _ sport: UInt16, destination: String, _ dport: UInt16) -> [UInt8] {
    let v6 = source.contains(":")
    var out = v2Signature + [0x21, v6 ? 0x21 : 0x11, 0, v6 ? 36 : 12]
    out += addressBytes(source) + addressBytes(destination)
    out += [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF)]
    return out
}

private func addressBytes(_ host: String) -> [UInt8] {
    if host.contains(":") {
        var a = in6_addr()
        inet_pton(AF_INET6, host, &a)
        return withUnsafeBytes(of: a) { Array($0) }
    }
    var a = in_addr()
    inet_pton(AF_INET, host, &a)
    return withUnsafeBytes(of: a) { Array($0) }
}

/// A blocking TCP connection to `host:port` from `source` (any loopback address on Linux);
/// returns the socket and its local port.
func connectFrom(_ source: String, to host: String, port: UInt16) throws -> (fd: Int32, port: UInt16) {
    let v6 = host.contains(":")
    let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSocket.Failure("socket failed") }
    TestSocket.setTimeouts(fd, seconds: 10)
    guard TestSocket.withSockaddr(host: source, port: 0, { bind(fd, $0, $1) }) == 0,
        TestSocket.withSockaddr(host: host, port: port, { Glibc.connect(fd, $0, $1) }) == 0
    else {
        let e = String(cString: strerror(errno))
        close(fd)
        throw TestSocket.Failure("connect from \(source) to \(host):\(port): \(e)")
    }
    let local = TestSocket.localPort(fd)
    return (fd, local)
}

/// A tcp listener `front` forwarding to the tcp (or tls) group `pool`.
private func l4Config(bind: String, target: UInt16, targetHost: String = "127.0.0.1", listener: [String] = [],
                      group: [String] = ["health_check: off"], groupProtocol: String = "tcp") -> String {
    var lines = ["node:", "  workers: 1", "  shutdown_grace: 2s", "listeners:",
                 "  - name: front", "    protocol: tcp", "    bind: \"\(bind)\"", "    default: { forward: pool }"]
    lines += listener.map { "    " + $0 }
    lines += ["target_groups:", "  - name: pool", "    protocol: \(groupProtocol)"]
    lines += group.map { "    " + $0 }
    let address = targetHost.contains(":") ? "[\(targetHost)]:\(target)" : "\(targetHost):\(target)"
    lines += ["    targets:", "      - { address: \"\(address)\" }"]
    return lines.joined(separator: "\n") + "\n"
}

/// Sends `payload` on `fd`, half-closes, and returns what came back.
private func echoed(_ fd: Int32, _ payload: [UInt8]) throws -> [UInt8] {
    try TestSocket.sendAll(fd, payload)
    TestSocket.shutdownWrite(fd)
    return try TestSocket.receiveAll(fd)
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct ProxyProtocolSendTests {
    @Test func v1AndV2FromAnIPv4ClientAreByteExact() throws {
        let target = try ProxyTarget()
        for version in ["v1", "v2"] {
            let port = try TestSocket.freePort()
            let d = try SluicedProcess(yaml: l4Config(bind: "127.0.0.1:\(port)", target: target.port,
                                                      listener: ["proxy_protocol: \(version)"]))
            defer { d.terminate() }
            let before = try target.headers().count
            let (fd, local) = try connectFrom("127.0.0.2", to: "127.0.0.1", port: port)
            defer { close(fd) }
            let payload = Array("hello through \(version)".utf8)
            #expect(try echoed(fd, payload) == payload, "the header never reaches the client")
            let header = try target.waitForHeaders(before + 1)[before]
            let expected = version == "v1"
                ? Array("PROXY TCP4 127.0.0.2 127.0.0.1 \(local) \(port)\r\n".utf8)
                : v2Header(source: "127.0.0.2", local, destination: "127.0.0.1", port)
            #expect(header == expected, "\(version): \(String(decoding: header, as: UTF8.self))")
        }
    }

    @Test func v1AndV2FromAnIPv6ClientAreByteExact() throws {
        let target = try ProxyTarget()
        for version in ["v1", "v2"] {
            let port = try TestSocket.freePort()
            let d = try SluicedProcess(yaml: l4Config(bind: "[::1]:\(port)", target: target.port, targetHost: "::1",
                                                      listener: ["proxy_protocol: \(version)"]))
            defer { d.terminate() }
            let before = try target.headers().count
            let (fd, local) = try connectFrom("::1", to: "::1", port: port)
            defer { close(fd) }
            let payload = randomPayload(count: 200_000, seed: 9)
            #expect(fnv1a(try echoed(fd, payload)) == fnv1a(payload))
            let header = try target.waitForHeaders(before + 1)[before]
            let expected = version == "v1"
                ? Array("PROXY TCP6 ::1 ::1 \(local) \(port)\r\n".utf8)
                : v2Header(source: "::1", local, destination: "::1", port)
            #expect(header == expected, "\(version): \(String(decoding: header, as: UTF8.self))")
        }
    }

    /// A wildcard bind: the destination is the address the client actually reached.
    @Test func wildcardBindSendsTheAddressTheClientReached() throws {
        let target = try ProxyTarget()
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: l4Config(bind: "0.0.0.0:\(port)", target: target.port, listener: ["proxy_protocol: v1"]))
        defer { d.terminate() }
        let (fd, local) = try connectFrom("127.0.0.5", to: "127.0.0.3", port: port)
        defer { close(fd) }
        #expect(try echoed(fd, Array("x".utf8)) == Array("x".utf8))
        let header = try target.waitForHeaders(1)[0]
        #expect(String(decoding: header, as: UTF8.self) == "PROXY TCP4 127.0.0.5 127.0.0.3 \(local) \(port)\r\n")
    }

    /// The group's setting wins over the listener's.
    @Test func groupSettingWins() throws {
        let target = try ProxyTarget()
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: l4Config(bind: "127.0.0.1:\(port)", target: target.port,
                                                  listener: ["proxy_protocol: v1"],
                                                  group: ["health_check: off", "proxy_protocol: v2"]))
        defer { d.terminate() }
        let (fd, local) = try connectFrom("127.0.0.1", to: "127.0.0.1", port: port)
        defer { close(fd) }
        #expect(try echoed(fd, Array("y".utf8)) == Array("y".utf8))
        #expect(try target.waitForHeaders(1)[0] == v2Header(source: "127.0.0.1", local, destination: "127.0.0.1", port))
    }

    /// A `tls` group: the header goes on the bare socket, then the TLS handshake.
    @Test func tlsGroupGetsTheHeaderBeforeTheHandshake() throws {
        let target = try ProxyTarget(tls: true)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: l4Config(
            bind: "127.0.0.1:\(port)", target: target.port, listener: ["proxy_protocol: v2"],
            group: ["health_check: off", "tls: { verify: true, ca_file: \(try TestCerts.path("ca.pem")), server_name: a.example }"],
            groupProtocol: "tls"))
        defer { d.terminate() }
        let (fd, local) = try connectFrom("127.0.0.2", to: "127.0.0.1", port: port)
        defer { close(fd) }
        let payload = randomPayload(count: 100_000, seed: 3)
        #expect(fnv1a(try echoed(fd, payload)) == fnv1a(payload), "TLS to the target works after the header")
        #expect(try target.waitForHeaders(1)[0] == v2Header(source: "127.0.0.2", local, destination: "127.0.0.1", port))
    }

    /// Health checks of a group whose targets get headers open with a LOCAL one: v2 from the
    /// listener's setting on a tcp check, v1 (`PROXY UNKNOWN`) before an http check's GET.
    @Test func healthChecksSendLocalHeaders() throws {
        let target = try ProxyTarget()
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: l4Config(
            bind: "127.0.0.1:\(port)", target: target.port, listener: ["proxy_protocol: v2"],
            group: ["health_check: { protocol: tcp, interval: 200ms, timeout: 100ms }"]))
        let local = v2Signature + [0x20, 0x00, 0x00, 0x00]
        let tcpHeaders = try target.waitForHeaders(2)
        d.terminate()
        #expect(tcpHeaders.prefix(2).allSatisfy { $0 == local }, "\(tcpHeaders)")

        let httpTarget = try ProxyTarget()
        let port2 = try TestSocket.freePort()
        let d2 = try SluicedProcess(yaml: l4Config(
            bind: "127.0.0.1:\(port2)", target: httpTarget.port,
            group: ["proxy_protocol: v1", "health_check: { protocol: http, path: /healthz, interval: 200ms, timeout: 100ms, healthy_threshold: 2 }"]))
        defer { d2.terminate() }
        let httpHeaders = try httpTarget.waitForHeaders(2)
        #expect(httpHeaders.prefix(2).allSatisfy { $0 == Array("PROXY UNKNOWN\r\n".utf8) }, "\(httpHeaders)")
        // The checks pass (the target answered 200 after the header): the target turns healthy.
        try waitUntil("the target is healthy") {
            let m = (try? metricsText(d2)) ?? ""
            return m.split(separator: "\n").contains { $0.hasPrefix("sluice_target_health{") && $0.contains("state=\"healthy\"} 1") }
        }
    }
}

/// An http listener `web` with `accept_proxy_protocol: true` in front of `backend`, its
/// access log in `log`, and a `source` rule answering 203.0.113.0/24 itself on `/rule`.
private func acceptingHTTPConfig(port: UInt16, backend: UInt16, log: String, extra: [String] = []) -> String {
    var yaml = httpConfig(port: port, groups: [("app", [backend])], listener: [
        "accept_proxy_protocol: true",
        "header_timeout: 2s",
        "rules:",
        "  - { priority: 1, when: { path: [\"/rule\"], source: [\"203.0.113.0/24\"] }, then: { respond: { status: 200, content_type: text/plain, body: \"from-doc-net\" } } }",
    ] + extra)
    yaml = yaml.replacingOccurrences(of: "access_log: off", with: "access_log: \(log)")
    return yaml
}

/// A daemon whose http listener accepts PROXY headers (`acceptingHTTPConfig`), its target and
/// its access log; `stop()` ends the daemon and removes the log.
private struct AcceptingHTTP {
    let backend: HTTPBackend
    let port: UInt16
    let log: String
    let daemon: SluicedProcess

    init() throws {
        backend = try HTTPBackend(name: "a")
        port = try TestSocket.freePort()
        log = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pp-\(UUID().uuidString).log").path
        daemon = try SluicedProcess(yaml: acceptingHTTPConfig(port: port, backend: backend.port, log: log))
    }

    func stop() {
        daemon.terminate()
        try? FileManager.default.removeItem(atPath: log)
    }
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct ProxyProtocolAcceptTests {
    @Test func curlHAProxyProtocolIsAccepted() throws {
        let f = try AcceptingHTTP()
        defer { f.stop() }
        let (port, d) = (f.port, f.daemon)
        let r = try runTool("curl", ["-s", "--max-time", "10", "--haproxy-protocol", "--interface", "127.0.0.4",
                                     "http://127.0.0.1:\(port)/x"])
        #expect(r.output.contains("\"x-forwarded-for\": \"127.0.0.4\""), "\(r.output)")
        // Without a header the connection is closed, not answered.
        let plain = try runTool("curl", ["-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                                         "http://127.0.0.1:\(port)/x"])
        #expect(plain.output == "000", "\(plain.output)")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_errors_total{listener=\"web\",kind=\"proxy_header_invalid\"}") == 1, "\(m)")
    }

    /// The carried client drives X-Forwarded-For, `source` rules and the access log.
    @Test func carriedClientDrivesRulesForwardedForAndLogs() throws {
        let f = try AcceptingHTTP()
        defer { f.stop() }
        let (port, log, d) = (f.port, f.log, f.daemon)
        let header = "PROXY TCP4 203.0.113.7 127.0.0.1 40001 \(port)\r\n"
        let viaTarget = try HTTPClient.request(port: port, header + "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(receivedHeaders(viaTarget)["x-forwarded-for"] == "203.0.113.7", "\(viaTarget.text)")
        let byRule = try HTTPClient.request(port: port, header + "GET /rule HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(byRule.text == "from-doc-net")
        // Without the header's address the rule does not match: the target answers.
        let local = "PROXY TCP4 127.0.0.1 127.0.0.1 40002 \(port)\r\n"
        let notByRule = try HTTPClient.request(port: port, local + "GET /rule HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(notByRule.json["path"] as? String == "/rule")
        // v2 with an IPv6 source, and UNKNOWN/LOCAL keep the real peer.
        let v6 = v2Header(source: "2001:db8::7", 5555, destination: "2001:db8::1", 80)
        let fd6 = try TestSocket.connect(port: port)
        defer { close(fd6) }
        try TestSocket.sendAll(fd6, v6 + Array("GET /v6 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
        let r6 = try #require(HTTPClient.parse(try TestSocket.receiveAll(fd6)).first)
        #expect(receivedHeaders(r6)["x-forwarded-for"] == "2001:db8::7", "\(r6.text)")
        let unknown = try HTTPClient.request(port: port, "PROXY UNKNOWN\r\nGET /u HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(receivedHeaders(unknown)["x-forwarded-for"] == "127.0.0.1")
        try waitUntil("the access log names the carried client") {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.contains("\"client\":\"203.0.113.7\",\"client_port\":40001")
                && text.contains("\"client\":\"2001:db8::7\",\"client_port\":5555")
        }
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_errors_total{listener=\"web\",kind=\"proxy_header_invalid\"}") == 0, "\(m)")
    }

    /// HTTP/2 streams (h2c prior knowledge) take the address of their connection's header.
    @Test func http2StreamsUseTheCarriedClient() throws {
        let f = try AcceptingHTTP()
        defer { f.stop() }
        let port = f.port
        // Preface, empty SETTINGS, HEADERS (GET http://t/h2, HPACK literals) with END_STREAM.
        let script = """
        import socket, sys, json
        s = socket.create_connection(("127.0.0.1", \(port)), timeout=10)
        hdr = b"\\x82\\x86\\x44\\x03/h2\\x41\\x01t"
        frames = b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" + b"\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x00\\x00"
        frames += len(hdr).to_bytes(3, "big") + b"\\x01\\x05\\x00\\x00\\x00\\x01" + hdr
        s.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 40003 \(port)\\r\\n" + frames)
        buf, body = b"", b""
        while True:
            while len(buf) < 9:
                c = s.recv(65536)
                if not c: sys.exit("closed")
                buf += c
            n = int.from_bytes(buf[:3], "big")
            while len(buf) < 9 + n:
                c = s.recv(65536)
                if not c: sys.exit("closed")
                buf += c
            ftype, flags, sid, payload = buf[3], buf[4], int.from_bytes(buf[5:9], "big"), buf[9:9 + n]
            buf = buf[9 + n:]
            if ftype == 0 and sid == 1:
                body += payload
                if flags & 1: break
            if ftype == 1 and sid == 1 and flags & 1: break
        print(json.loads(body)["headers"].get("x-forwarded-for"))
        """
        let r = try runTool(FixtureProcess.python, ["-c", script])
        #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "203.0.113.9", "\(r.output)")
    }

    /// An https listener reads the header before the TLS handshake (curl sends it first).
    @Test func httpsListenerReadsTheHeaderBeforeTLS() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates(),
                                                      listener: ["accept_proxy_protocol: true"]))
        defer { d.terminate() }
        let r = try curlTLS(port, path: "/s", ["--haproxy-protocol", "--interface", "127.0.0.6"])
        #expect(r.output.contains("\"x-forwarded-for\": \"127.0.0.6\""), "\(r.output)")
        let h2 = try curlTLS(port, path: "/s2", ["--http2", "--haproxy-protocol", "-w", "\n%{http_version}"])
        #expect(h2.output.hasSuffix("\n2") && h2.output.contains("\"x-forwarded-for\": \"127.0.0.1\""), "\(h2.output)")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"success\"}") == 2, "\(m)")
    }

    /// Sluice A (tcp listener, sends v2) → Sluice B (tcp listener accepting, sends v1 on) →
    /// target: the real client crosses both; and A → B's http listener → X-Forwarded-For.
    @Test func chainOfTwoSluicesCarriesTheRealClient() throws {
        let target = try ProxyTarget()
        let web = try HTTPBackend(name: "w")
        let bTCP = try TestSocket.freePort()
        let bHTTP = try TestSocket.freePort()
        var yamlB = httpConfig(port: bHTTP, groups: [("app", [web.port])], listener: ["accept_proxy_protocol: true"])
        yamlB = yamlB.replacingOccurrences(of: "target_groups:", with: """
          - name: l4
            protocol: tcp
            bind: "127.0.0.1:\(bTCP)"
            accept_proxy_protocol: true
            proxy_protocol: v1
            default: { forward: raw }
        target_groups:
          - name: raw
            protocol: tcp
            health_check: off
            targets:
              - { address: "127.0.0.1:\(target.port)" }
        """)
        let b = try SluicedProcess(yaml: yamlB)
        defer { b.terminate() }
        let aTCP = try TestSocket.freePort()
        let aHTTP = try TestSocket.freePort()
        let yamlA = """
        node: { workers: 1, shutdown_grace: 2s }
        listeners:
          - { name: to-l4, protocol: tcp, bind: "127.0.0.1:\(aTCP)", proxy_protocol: v2, default: { forward: b-l4 } }
          - { name: to-web, protocol: tcp, bind: "127.0.0.1:\(aHTTP)", proxy_protocol: v2, default: { forward: b-web } }
        target_groups:
          - { name: b-l4, protocol: tcp, health_check: off, targets: [{ address: "127.0.0.1:\(bTCP)" }] }
          - { name: b-web, protocol: tcp, health_check: off, targets: [{ address: "127.0.0.1:\(bHTTP)" }] }

        """
        let a = try SluicedProcess(yaml: yamlA)
        defer { a.terminate() }
        let (fd, local) = try connectFrom("127.0.0.7", to: "127.0.0.1", port: aTCP)
        defer { close(fd) }
        #expect(try echoed(fd, Array("chain".utf8)) == Array("chain".utf8))
        let header = try target.waitForHeaders(1)[0]
        // B forwards the client A saw, and the address it reached at A.
        #expect(String(decoding: header, as: UTF8.self) == "PROXY TCP4 127.0.0.7 127.0.0.1 \(local) \(aTCP)\r\n")

        let (hfd, _) = try connectFrom("127.0.0.8", to: "127.0.0.1", port: aHTTP)
        defer { close(hfd) }
        try TestSocket.sendAll(hfd, Array("GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
        let response = try #require(HTTPClient.parse(try TestSocket.receiveAll(hfd)).first)
        #expect(receivedHeaders(response)["x-forwarded-for"] == "127.0.0.8", "\(response.text)")
        let m = try metricsText(b)
        #expect(metricValue(m, "sluice_errors_total{listener=\"l4\",kind=\"proxy_header_invalid\"}") == 0)
    }
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct ProxyProtocolHostileTests {
    /// Truncated, oversized, wrong signature, huge v2 length, slow drip: each connection is
    /// closed, counted, and the target never sees a connection.
    @Test func hostileHeadersAreClosedAndCounted() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: l4Config(bind: "127.0.0.1:\(port)", target: echo.port,
                                                  listener: ["accept_proxy_protocol: true", "idle_timeout: 1s"]))
        defer { d.terminate() }
        func closedAfter(_ bytes: [UInt8], halfClose: Bool = false) throws -> Bool {
            let fd = try TestSocket.connect(port: port, timeoutSeconds: 5)
            defer { close(fd) }
            try TestSocket.sendAll(fd, bytes)
            if halfClose { TestSocket.shutdownWrite(fd) }
            return TestSocket.waitForClose(fd)
        }
        #expect(try closedAfter(Array("PROXY TCP4 192.0.2.1 19".utf8), halfClose: true), "truncated then closed")
        #expect(try closedAfter(Array(("PROXY UNKNOWN " + String(repeating: "x", count: 200)).utf8)), "oversized v1")
        #expect(try closedAfter(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)), "no header at all")
        #expect(try closedAfter(v2Signature + [0x21, 0x11, 0xFF, 0xFF]), "v2 with a huge length")
        var m = try metricsText(d)
        #expect(metricValue(m, "sluice_errors_total{listener=\"front\",kind=\"proxy_header_invalid\"}") == 4, "\(m)")

        // Slow drip: one byte every 200 ms of a valid header; the 1 s limit closes it first.
        let fd = try TestSocket.connect(port: port, timeoutSeconds: 5)
        defer { close(fd) }
        let started = Date()
        var closed = false
        for b in Array("PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000\r\n".utf8) {
            var byte = b
            if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) != 1 { closed = true; break }
            var probe: UInt8 = 0
            // Poll for the close for 200 ms, then drip the next byte.
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 200) > 0, recv(fd, &probe, 1, Int32(MSG_DONTWAIT)) <= 0 { closed = true; break }
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(closed, "the slow header was not cut off")
        #expect(elapsed < 5, "closed after \(elapsed) s")
        try waitUntil("the timeout is counted") {
            m = (try? metricsText(d)) ?? ""
            return metricValue(m, "sluice_errors_total{listener=\"front\",kind=\"proxy_header_timeout\"}") == 1
        }
        #expect(echo.acceptedCount == 0, "a hostile connection reached the target")
        // A good header still works on the same listener.
        let good = try TestSocket.connect(port: port)
        defer { close(good) }
        #expect(try echoed(good, Array("PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000\r\nok".utf8)) == Array("ok".utf8))
    }

    /// On an http listener: a slow header hits min(10 s, header_timeout), and a plain HTTP
    /// request is closed at once without an answer.
    @Test func httpListenerTimesOutAndRefusesPlainRequests() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])],
                                                    listener: ["accept_proxy_protocol: true", "header_timeout: 500ms"]))
        defer { d.terminate() }
        let plain = try TestSocket.connect(port: port, timeoutSeconds: 5)
        defer { close(plain) }
        try TestSocket.sendAll(plain, Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        var answer: UInt8 = 0
        // Closed (EOF or a reset, the request being unread) without a byte of answer.
        let n = recv(plain, &answer, 1, 0)
        #expect(n == 0 || (n < 0 && errno == ECONNRESET), "a plain request was answered or left open: \(n)")
        let fd = try TestSocket.connect(port: port, timeoutSeconds: 5)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("PROXY TCP4".utf8))
        let started = Date()
        #expect(TestSocket.waitForClose(fd))
        #expect(Date().timeIntervalSince(started) < 3)
        try waitUntil("both counted") {
            let m = (try? metricsText(d)) ?? ""
            return metricValue(m, "sluice_errors_total{listener=\"web\",kind=\"proxy_header_invalid\"}") == 1
                && metricValue(m, "sluice_errors_total{listener=\"web\",kind=\"proxy_header_timeout\"}") == 1
        }
        #expect(try a.acceptedConnections() == 0)
    }
}
