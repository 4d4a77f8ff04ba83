import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An https listener `web` on `port` forwarding to http group `app`, with `tls` lines.
func httpsConfig(port: UInt16, targets: [UInt16], tls: [String], listener: [String] = [],
                 extraListeners: [String] = [], extraGroups: [String] = []) -> String {
    var lines = [
        "node:", "  workers: 1", "  shutdown_grace: 2s",
        "listeners:",
        "  - name: web", "    protocol: https", "    bind: \"127.0.0.1:\(port)\"", "    access_log: off",
        "    default: { forward: app }", "    tls:",
    ]
    lines += tls.map { "      " + $0 }
    lines += listener.map { "    " + $0 }
    lines += extraListeners
    lines += ["target_groups:", "  - name: app", "    protocol: http", "    health_check: off",
              "    targets:" + (targets.isEmpty ? " []" : "")]
    lines += targets.map { "      - { address: \"127.0.0.1:\($0)\" }" }
    lines += extraGroups
    return lines.joined(separator: "\n") + "\n"
}

/// The two server certificates: a.example (RSA, default) and b.example (ECDSA).
func twoCertificates() throws -> [String] {
    ["certificates:",
     "  - { cert: \(try TestCerts.path("a.pem")), key: \(try TestCerts.path("a.key")) }",
     "  - { cert: \(try TestCerts.path("b.pem")), key: \(try TestCerts.path("b.key")) }"]
}

/// curl over TLS to `name` (resolved to 127.0.0.1), trusting the test CA.
func curlTLS(_ port: UInt16, name: String = "a.example", path: String = "/", _ extra: [String] = []) throws
    -> (status: Int32, output: String) {
    try runTool("curl", ["-s", "--cacert", try TestCerts.path("ca.pem"), "--resolve", "\(name):\(port):127.0.0.1",
                         "--max-time", "10"] + extra + ["https://\(name):\(port)\(path)"])
}

/// `openssl s_client` with `args`, its stdin closed at once; output and status.
func sClient(_ port: UInt16, _ args: [String]) throws -> (status: Int32, output: String) {
    try runTool("bash", ["-c", "openssl s_client -connect 127.0.0.1:\(port) " + args.joined(separator: " ")
                         + " </dev/null 2>&1"])
}

/// A tcp listener `front` forwarding through a tls group to a tls listener `inner` (certificate
/// a.example, verified against the test CA) that forwards to the echo target: TLS offload and
/// re-encryption on one loopback. `innerExtra`: more keys of the inner listener.
func tlsChainConfig(front: UInt16, inner: UInt16, echo: UInt16, innerExtra: [String] = []) throws -> String {
    """
    node: { workers: 1, shutdown_grace: 2s }
    listeners:
      - { name: front, protocol: tcp, bind: "127.0.0.1:\(front)", default: { forward: inner } }
      - name: inner
        protocol: tls
        bind: "127.0.0.1:\(inner)"
        default: { forward: echo }
    \(innerExtra.map { "    " + $0 + "\n" }.joined())    tls: { certificates: [{ cert: \(try TestCerts.path("a.pem")), key: \(try TestCerts.path("a.key")) }] }
    target_groups:
      - name: inner
        protocol: tls
        health_check: off
        tls: { verify: true, ca_file: \(try TestCerts.path("ca.pem")), server_name: a.example }
        targets: [{ address: "127.0.0.1:\(inner)" }]
      - { name: echo, protocol: tcp, health_check: off, targets: [{ address: "127.0.0.1:\(echo)" }] }

    """
}

func metricsText(_ d: SluicedProcess) throws -> String {
    try runTool("curl", ["-s", "--unix-socket", d.controlSocket, "http://x/metrics"]).output
}

/// Value of one metric line (`name{labels}`), 0 when absent.
func metricValue(_ text: String, _ series: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.split(separator: " ").last ?? "") ?? 0
    }
    return 0
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct TLSListenerTests {
    @Test func sniPicksTheCertificateAndForwardsHTTPS() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates()))
        defer { d.terminate() }
        let r = try curlTLS(port, name: "a.example", path: "/x", ["-w", "\n%{http_code}"])
        #expect(r.output.hasSuffix("\n200"), "\(r.output)")
        #expect(r.output.contains("\"x-forwarded-proto\": \"https\""), "\(r.output)")
        #expect(try curlTLS(port, name: "b.example", ["-o", "/dev/null", "-w", "%{http_code}"]).output == "200")
        let b = try sClient(port, ["-servername", "b.example"])
        #expect(b.output.contains("CN = b.example") || b.output.contains("CN=b.example"), "\(b.output)")
        let none = try sClient(port, ["-noservername"])
        #expect(none.output.contains("a.example"), "the first certificate is the default: \(none.output)")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"success\"}") >= 4, "\(m)")
    }

    @Test func redirectsOnHTTPSListenersSayHTTPS() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates(), listener: [
            "rules:", "  - { priority: 1, when: { path: [\"/old/*\"] }, then: { redirect: { status: 301, path: \"/new/#{path}\" } } }"]))
        defer { d.terminate() }
        let r = try curlTLS(port, path: "/old/x?q=1", ["--http1.1", "-o", "/dev/null", "-w", "%{redirect_url}"])
        #expect(r.output == "https://a.example:\(port)/new/old/x?q=1", "\(r.output)")
    }

    @Test func alpnAndVersions() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port],
                                                      tls: try twoCertificates() + ["min_version: \"1.3\""]))
        defer { d.terminate() }
        let h2 = try sClient(port, ["-alpn", "h2,http/1.1", "-servername", "a.example"])
        #expect(h2.output.contains("ALPN protocol: h2"), "\(h2.output)")
        let h1 = try sClient(port, ["-alpn", "http/1.1", "-servername", "a.example"])
        #expect(h1.output.contains("ALPN protocol: http/1.1"), "\(h1.output)")
        let old = try sClient(port, ["-tls1_2", "-servername", "a.example"])
        #expect(!old.output.contains("Cipher is TLS") && !old.output.contains("New, TLSv1.2"), "\(old.output)")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"protocol_version\"}") == 1, "\(m)")
    }

    @Test func sessionsResumeWithTickets() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates()))
        defer { d.terminate() }
        for version in ["-tls1_2", "-tls1_3"] {
            let file = d.directory.appendingPathComponent("sess\(version)").path
            // The TLS 1.3 ticket comes after the handshake: send a request so s_client reads it.
            let first = try runTool("bash", ["-c", "printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n' | "
                + "openssl s_client -connect 127.0.0.1:\(port) -servername a.example \(version) -sess_out \(file) -ign_eof 2>&1"])
            #expect(first.output.contains("New,"), "\(first.output)")
            let second = try runTool("bash", ["-c", "printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n' | "
                + "openssl s_client -connect 127.0.0.1:\(port) -servername a.example \(version) -sess_in \(file) -ign_eof 2>&1"])
            #expect(second.output.contains("Reused,"), "\(version): \(second.output)")
        }
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"resumed\"}") == 2, "\(m)")
    }

    @Test func mutualTLSVerifyPassesTheCertificateAndDropsForgedHeaders() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates() + [
            "client_auth: { mode: verify, ca_file: \(try TestCerts.path("ca.pem")) }"]))
        defer { d.terminate() }
        let refused = try curlTLS(port, ["-o", "/dev/null", "-w", "%{http_code}"])
        #expect(refused.output == "000", "no client certificate: \(refused.output)")
        let stranger = try curlTLS(port, ["--cert", try TestCerts.path("stranger.pem"), "--key", try TestCerts.path("stranger.key"),
                                          "-o", "/dev/null", "-w", "%{http_code}"])
        #expect(stranger.output == "000", "\(stranger.output)")
        let ok = try curlTLS(port, ["--cert", try TestCerts.path("client.pem"), "--key", try TestCerts.path("client.key"),
                                    "-H", "X-Sluice-Client-Cert-Subject: CN=forged"])
        let json = (try? JSONSerialization.jsonObject(with: Data(ok.output.utf8))) as? [String: Any] ?? [:]
        let h = json["headers"] as? [String: String] ?? [:]
        #expect(h["x-sluice-client-cert-subject"] == "CN=client-1,O=Sluice Tests", "\(ok.output)")
        #expect((h["x-sluice-client-cert-serial"] ?? "").allSatisfy { "0123456789ABCDEF".contains($0) })
        #expect((h["x-sluice-client-cert-serial"] ?? "").count > 0)
        let pem = try String(contentsOfFile: try TestCerts.path("client.pem"), encoding: .utf8)
        let leaf = pem.components(separatedBy: "-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        #expect(h["x-sluice-client-cert"]?.removingPercentEncoding == leaf, "\(h["x-sluice-client-cert"] ?? "nil")")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"no_client_certificate\"}") == 1, "\(m)")
    }

    @Test func mutualTLSPassthroughAcceptsNone() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates() + [
            "client_auth: { mode: passthrough }"]))
        defer { d.terminate() }
        let none = try curlTLS(port, ["-H", "X-Sluice-Client-Cert: forged"])
        let h = ((try? JSONSerialization.jsonObject(with: Data(none.output.utf8))) as? [String: Any])?["headers"] as? [String: String]
        #expect(h != nil, "\(none.output)")
        #expect(h?["x-sluice-client-cert"] == nil && h?["x-sluice-client-cert-subject"] == nil, "\(none.output)")
        let stranger = try curlTLS(port, ["--cert", try TestCerts.path("stranger.pem"), "--key", try TestCerts.path("stranger.key")])
        #expect(stranger.output.contains("x-sluice-client-cert-serial"), "passthrough takes any certificate: \(stranger.output)")
    }

    @Test func stalledAndPlainTextHandshakesAreBoundedAndCounted() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port],
                                                      tls: try twoCertificates() + ["handshake_timeout: 300ms"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port, timeoutSeconds: 5)
        defer { close(fd) }
        let start = Date()
        // The daemon closes the silent connection (an EOF, or a reset: both end it).
        let rest = (try? TestSocket.receiveAll(fd)) ?? []
        #expect(rest.isEmpty)
        #expect(Date().timeIntervalSince(start) < 3)
        let plain = (try? HTTPClient.exchange(port: port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) ?? []
        #expect(!String(decoding: plain, as: UTF8.self).contains("200"))
        // A working client is not disturbed.
        #expect(try curlTLS(port, ["-o", "/dev/null", "-w", "%{http_code}"]).output == "200")
        try waitUntil("timeout and not_tls counted") {
            let m = (try? metricsText(d)) ?? ""
            return metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"timeout\"}") == 1
                && metricValue(m, "sluice_tls_handshakes_total{listener=\"web\",result=\"not_tls\"}") == 1
        }
        // Logged once per cause and interval (every 10 s), not per connection.
        try waitUntil("the failures logged") { d.log.contains("tls handshakes failed") && d.log.contains("not_tls") }
        #expect(d.log.components(separatedBy: "not_tls").count - 1 == 1, "\(d.log)")
    }

    @Test func reloadRereadsCertificatesAndRefusesABadOne() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let dir = NSTemporaryDirectory() + "sluice-reload-certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try TestCerts.path("a.pem"), toPath: dir + "/live.pem")
        try FileManager.default.copyItem(atPath: try TestCerts.path("a.key"), toPath: dir + "/live.key")
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port],
                                                      tls: ["certificates: [{ cert: \(dir)/live.pem, key: \(dir)/live.key }]"]))
        defer { d.terminate() }
        #expect(try sClient(port, ["-servername", "x"]).output.contains("a.example"))
        // A broken certificate: the reload is refused, the old one keeps serving.
        try FileManager.default.removeItem(atPath: dir + "/live.pem")
        try FileManager.default.copyItem(atPath: try TestCerts.path("bad.pem"), toPath: dir + "/live.pem")
        d.send(signal: SIGHUP)
        try waitUntil("reload refused in the log") { d.log.contains("live.pem") }
        #expect(try sClient(port, ["-servername", "x"]).output.contains("a.example"))
        // The API's refusal names the file, line and column and the key (SPEC §2).
        let refused = try runTool("curl", ["-s", "--unix-socket", d.controlSocket, "-X", "POST", "http://x/v1/reload"])
        #expect(refused.output.range(of: #"\.yaml:\d+:\d+: listeners\[0\]\.tls\.certificates\[0\]\.cert"#,
                                     options: .regularExpression) != nil, "\(refused.output)")
        // A new valid pair on disk: the next reload serves it.
        try FileManager.default.removeItem(atPath: dir + "/live.pem")
        try FileManager.default.removeItem(atPath: dir + "/live.key")
        try FileManager.default.copyItem(atPath: try TestCerts.path("b.pem"), toPath: dir + "/live.pem")
        try FileManager.default.copyItem(atPath: try TestCerts.path("b.key"), toPath: dir + "/live.key")
        d.send(signal: SIGHUP)
        try waitUntil("the new certificate is served") {
            ((try? sClient(port, ["-servername", "x"]))?.output ?? "").contains("b.example")
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct TLSForwardingTests {
    /// tcp listener → tls group → tls listener (same daemon) → tcp group → echo target: TLS
    /// offload and re-encryption both ways, bytes intact.
    @Test func tlsListenerAndTLSGroupCarryBytes() throws {
        let echo = try TCPBackend(mode: .echo)
        let front = try TestSocket.freePort()
        let inner = try TestSocket.freePort()
        let yaml = try tlsChainConfig(front: front, inner: inner, echo: echo.port)
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: front)
        defer { close(fd) }
        let payload = randomPayload(count: 1_000_000, seed: 11)
        #expect(fnv1a(try echoRoundTrip(fd, payload)) == fnv1a(payload))
        // openssl straight to the tls listener.
        let r = try runTool("bash", ["-c", "printf 'ping\\n' | socat -t 5 - OPENSSL:127.0.0.1:\(inner),"
            + "cafile=\(try TestCerts.path("ca.pem")),commonname=a.example,snihost=a.example"])
        #expect(r.output.contains("ping"), "\(r.output)")
    }

    /// http listener → https group (verify, server_name) → https listener → http target; a
    /// wrong server name fails verification (502), verify: false accepts it.
    @Test func httpsGroupVerifiesTargets() throws {
        let a = try HTTPBackend(name: "a")
        let front = try TestSocket.freePort()
        let inner = try TestSocket.freePort()
        let ca = try TestCerts.path("ca.pem")
        let yaml = """
        node: { workers: 1, shutdown_grace: 2s }
        listeners:
          - name: front
            protocol: http
            bind: "127.0.0.1:\(front)"
            access_log: off
            rules:
              - { priority: 1, when: { path: ["/wrong"] }, then: { forward: wrongname } }
              - { priority: 2, when: { path: ["/lax"] }, then: { forward: lax } }
            default: { forward: secure }
          - name: inner
            protocol: https
            bind: "127.0.0.1:\(inner)"
            access_log: off
            default: { forward: app }
            tls: { certificates: [{ cert: \(try TestCerts.path("a.pem")), key: \(try TestCerts.path("a.key")) }] }
        target_groups:
          - name: secure
            protocol: https
            health_check: { protocol: https, path: /healthz, interval: 200ms, timeout: 150ms }
            tls: { ca_file: \(ca), server_name: a.example }
            targets: [{ address: "127.0.0.1:\(inner)" }]
          - name: wrongname
            protocol: https
            health_check: off
            tls: { ca_file: \(ca), server_name: wrong.example }
            targets: [{ address: "127.0.0.1:\(inner)" }]
          - name: lax
            protocol: https
            health_check: off
            tls: { verify: false, server_name: wrong.example }
            targets: [{ address: "127.0.0.1:\(inner)" }]
          - { name: app, protocol: http, health_check: off, targets: [{ address: "127.0.0.1:\(a.port)" }] }

        """
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        try waitUntil("https health check passes") {
            let out = (try? ctl(d, ["targets", "list"]))?.output ?? ""
            return out.contains("healthy") && !out.contains("unhealthy") && !out.contains("initial")
        }
        for _ in 0..<3 {
            let r = try get(front, "/ok")
            #expect(r.status == 200)
            #expect(receivedHeaders(r)["x-forwarded-proto"] == "https", "the inner hop was TLS")
        }
        #expect(try get(front, "/wrong").status == 502)
        #expect(try get(front, "/lax").status == 200)
    }

    /// Connections to https targets are pooled and reused like plain ones.
    @Test func pooledTLSConnectionsToTargetsAreReused() throws {
        let t = try FixtureProcess(script: "tls_backend.py", arguments: ["--cert", try TestCerts.path("a.pem"),
                                                                       "--key", try TestCerts.path("a.key"), "--name", "tls1"])
        let port = try TestSocket.freePort()
        let yaml = """
        node: { workers: 1, shutdown_grace: 2s }
        listeners:
          - { name: web, protocol: http, bind: "127.0.0.1:\(port)", access_log: off, default: { forward: secure } }
        target_groups:
          - name: secure
            protocol: https
            health_check: off
            tls: { ca_file: \(try TestCerts.path("ca.pem")), server_name: a.example }
            targets: [{ address: "127.0.0.1:\(t.port)" }]

        """
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        // Five requests one after the other on one client connection.
        let raw = (0..<5).map { "GET /r\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined() + "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let responses = HTTPClient.parse(try HTTPClient.exchange(port: port, raw))
        #expect(responses.count == 6 && responses.allSatisfy { $0.status == 200 }, "\(responses.map(\.status))")
        #expect(responses.last?.json["tls"] as? [String: Any] != nil)
        let stats = try runTool("curl", ["-sk", "https://127.0.0.1:\(t.port)/__stats"]).output
        let json = (try? JSONSerialization.jsonObject(with: Data(stats.utf8))) as? [String: Any] ?? [:]
        // One pooled TLS connection served all six (the stats request itself is the second).
        #expect(json["connections"] as? Int == 2, "\(stats)")
    }
}
