import Foundation
import SluiceTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

// HTTP/2 to clients, end to end: the real sluiced between real HTTP/2 clients (nghttp,
// h2load, curl over TLS, the hostile h2_hostile.py) and real HTTP/1.1 targets. curl is not
// used for h2c (curl 7.88 breaks on reused h2c connections).

/// `nghttp` (bounded by `timeout`) with `args`; stdout and stderr together.
private func nghttp(_ args: [String], seconds: Int = 20) throws -> (status: Int32, output: String) {
    try runBounded(seconds, "nghttp", args)
}

/// The rows of `nghttp -ns` statistics: (status code, path) per stream, in completion order.
private func nghttpStats(_ output: String) -> [(code: Int, path: String)] {
    output.split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 7, Int(f[0]) != nil, f[1].hasPrefix("+"), let code = Int(f[4]) else { return nil }
        return (code, String(f.last!))
    }
}

/// `h2load` (bounded): the numbers of its `requests:` and `status codes:` lines.
private struct H2LoadResult {
    var succeeded = -1, failed = -1, errored = -1, timeouts = -1, ok2xx = -1
    var output = ""
}

private func h2load(_ url: String, n: Int, c: Int, m: Int, seconds: Int = 60) throws -> H2LoadResult {
    let r = try runBounded(seconds, "h2load", ["-n", String(n), "-c", String(c), "-m", String(m), url])
    var out = H2LoadResult(output: r.output)
    func number(before word: String, in line: Substring) -> Int {
        let parts = line.replacingOccurrences(of: ",", with: "").split(separator: " ")
        guard let i = parts.firstIndex(where: { $0 == word }), i > 0 else { return -1 }
        return Int(parts[i - 1]) ?? -1
    }
    for line in r.output.split(separator: "\n") {
        if line.hasPrefix("requests:") {
            out.succeeded = number(before: "succeeded", in: line)
            out.failed = number(before: "failed", in: line)
            out.errored = number(before: "errored", in: line)
            out.timeouts = number(before: "timeout", in: line)
        } else if line.hasPrefix("status codes:") {
            out.ok2xx = number(before: "2xx", in: line)
        }
    }
    return out
}

/// An http listener `plain` on `port` forwarding to `app`, for `httpsConfig(extraListeners:)`.
private func plainListener(_ port: UInt16) -> [String] {
    ["  - name: plain", "    protocol: http", "    bind: \"127.0.0.1:\(port)\"", "    access_log: off",
     "    default: { forward: app }"]
}

/// A short summary of an h2_hostile.py report for failure messages.
private func brief(_ r: [String: Any]) -> String {
    let keys = ["mode", "n", "alpn", "sent_frames", "send_error", "goaway", "goaway_error", "goaway_last_stream",
                "goaway_after_ms", "closed", "closed_after_ms", "read_error", "frames_received", "headers_responses",
                "statuses"]
    return keys.map { "\($0)=\(r[$0] ?? "nil")" }.joined(separator: " ")
}

/// The attack was answered with GOAWAY (ENHANCE_YOUR_CALM, or PROTOCOL_ERROR where allowed)
/// and the connection closed within a second of the first attack frame.
private func expectCalmedDown(_ r: [String: Any], codes: [String] = ["ENHANCE_YOUR_CALM"],
                              sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r["goaway"] as? Bool == true, "GOAWAY expected: \(brief(r))", sourceLocation: sourceLocation)
    #expect(codes.contains(r["goaway_error"] as? String ?? "none"), "GOAWAY code: \(brief(r))",
            sourceLocation: sourceLocation)
    #expect(r["closed"] as? Bool == true, "connection closed expected: \(brief(r))", sourceLocation: sourceLocation)
    let after = r["closed_after_ms"] as? Double ?? .infinity
    #expect(after < 1000, "closed within 1 s: \(brief(r))", sourceLocation: sourceLocation)
}

/// Runs `body` on its own thread; `join` waits for it (bounded).
private final class Background<T: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is written once by the thread before `done` is signalled.
    private var value: T?
    private let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable () -> T) {
        Thread { [self] in
            value = body()
            done.signal()
        }.start()
    }
    func join(seconds: Double = 60) -> T? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()
        return value
    }
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct HTTP2Tests {
    // MARK: plain traffic

    /// Four streams on one prior-knowledge h2c connection: round robin across the two
    /// targets per stream, forwarded headers as for HTTP/1 (Host is the :authority).
    @Test func h2cPriorKnowledgeMultiplexesAndBalancesStreams() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port, b.port])]))
        defer { d.terminate() }
        let paths = ["/one", "/two", "/three", "/four"]
        let r = try nghttp(["-v"] + paths.map { "http://127.0.0.1:\(port)\($0)?q=1" })
        #expect(r.status == 0, "\(r.output)")
        let connects = r.output.components(separatedBy: "] Connected").count - 1
        #expect(connects == 1, "one connection for all streams: \(r.output)")
        #expect(!r.output.contains("HTTP Upgrade"), "prior knowledge, no h2c upgrade")
        let bodies = concatenatedJSONObjects(r.output)
        #expect(bodies.count == 4, "\(r.output)")
        #expect(Set(bodies.compactMap { $0["path"] as? String }) == Set(paths))
        let names = bodies.compactMap { $0["backend"] as? String }
        #expect(names.filter { $0 == "a" }.count == 2 && names.filter { $0 == "b" }.count == 2,
                "round robin across streams: \(names)")
        for body in bodies {
            let h = body["headers"] as? [String: String] ?? [:]
            #expect(h["x-forwarded-proto"] == "http", "\(h)")
            #expect(h["host"] == "127.0.0.1:\(port)", "Host is the :authority: \(h)")
            #expect(h["x-forwarded-for"] == "127.0.0.1", "\(h)")
            #expect(h["x-forwarded-port"] == "\(port)", "\(h)")
            #expect((h["x-sluice-trace"] ?? "").count == 16, "\(h)")
            #expect(body["query"] as? String == "q=1")
            #expect(body["method"] as? String == "GET")
        }
        // A chosen :authority is the Host the target sees.
        let named = try nghttp(["-H", ":authority: shop.example:\(port)", "http://127.0.0.1:\(port)/named"])
        let h = concatenatedJSONObjects(named.output).first?["headers"] as? [String: String] ?? [:]
        #expect(h["host"] == "shop.example:\(port)", "\(named.output)")
    }

    /// ALPN h2 on an https listener: curl --http2 speaks HTTP/2 (and reuses the connection),
    /// nghttp over TLS too; the target sees X-Forwarded-Proto https.
    @Test func h2OverTLSWithCurlAndNghttp() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: port, targets: [a.port], tls: try twoCertificates()))
        defer { d.terminate() }
        let c = try curlTLS(port, path: "/tls", ["--http2", "-v", "-w", "\n%{http_version} %{http_code}"])
        #expect(c.output.hasSuffix("\n2 200"), "\(c.output)")
        #expect(c.output.contains("ALPN: server accepted h2"), "\(c.output)")
        #expect(c.output.contains("\"x-forwarded-proto\": \"https\""), "\(c.output)")
        let two = try curlTLS(port, path: "/first", ["--http2", "-v", "-o", "/dev/null", "-w", "%{http_version}\n",
                                                    "https://a.example:\(port)/second"])
        #expect(two.output.contains("Re-using existing connection"), "\(two.output)")
        #expect(two.output.components(separatedBy: "\n2\n").count - 1 >= 1, "\(two.output)")
        let n = try nghttp(["-v", "https://127.0.0.1:\(port)/via-nghttp"])
        #expect(n.status == 0, "\(n.output)")
        #expect(n.output.contains("The negotiated protocol: h2"), "\(n.output)")
        let body = concatenatedJSONObjects(n.output).first ?? [:]
        #expect(body["path"] as? String == "/via-nghttp", "\(n.output)")
        #expect((body["headers"] as? [String: String])?["x-forwarded-proto"] == "https", "\(n.output)")
    }

    /// Many concurrent streams over a few connections, h2c and h2 over TLS: all answered 2xx.
    @Test func h2loadManyStreamsOnH2cAndTLS() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let port = try TestSocket.freePort()
        let tlsPort = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: tlsPort, targets: [a.port, b.port], tls: try twoCertificates(),
            extraListeners: plainListener(port)))
        defer { d.terminate() }
        for url in ["http://127.0.0.1:\(port)/load", "https://127.0.0.1:\(tlsPort)/load"] {
            let r = try h2load(url, n: 2000, c: 4, m: 16)
            #expect(r.succeeded == 2000 && r.ok2xx == 2000 && r.failed == 0 && r.errored == 0, "\(url): \(r.output)")
            if url.hasPrefix("https") { #expect(r.output.contains("Application protocol: h2"), "\(r.output)") }
        }
        let seen = try a.stats().count + b.stats().count
        #expect(seen == 4000, "every stream reached a target once: \(seen)")
    }

    /// A 3 MiB request body through h2 (flow control on the client's side): with a
    /// content-length (nghttp over h2c, curl over TLS) and without one (curl -T -).
    @Test func requestBodiesArriveIntact() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let tlsPort = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: tlsPort, targets: [a.port], tls: try twoCertificates(),
            extraListeners: plainListener(port)))
        defer { d.terminate() }
        let file = d.directory.appendingPathComponent("body.bin")
        try Data(randomPayload(count: 3 * 1024 * 1024, seed: 21)).write(to: file)
        let expected = String(try runTool("sha256sum", [file.path]).output.split(separator: " ")[0])
        let n = try nghttp(["-d", file.path, "http://127.0.0.1:\(port)/upload"])
        let nb = concatenatedJSONObjects(n.output).first ?? [:]
        #expect(nb["body_sha"] as? String == expected, "nghttp h2c: \(n.status) \(n.output.prefix(600))")
        #expect(nb["method"] as? String == "POST")
        let c = try curlTLS(tlsPort, path: "/upload", ["--http2", "--data-binary", "@\(file.path)", "--max-time", "20"])
        #expect(c.output.contains("\"body_sha\": \"\(expected)\""), "curl h2 content-length: \(c.output.prefix(600))")
        let noLength = try runBounded(30, "bash", ["-c", "curl -s --http2 --cacert \(try TestCerts.path("ca.pem")) "
            + "--resolve a.example:\(tlsPort):127.0.0.1 -X POST -T - https://a.example:\(tlsPort)/upload < \(file.path)"])
        #expect(noLength.output.contains("\"body_sha\": \"\(expected)\""),
                "curl h2 body without content-length: \(noLength.output.prefix(600))")
    }

    /// A 5,000,000-byte response through h2: all bytes, and the stream ends (END_STREAM) as
    /// soon as the target finished, not when a timer fires.
    @Test func largeResponsesArriveWholeAndEnd() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let tlsPort = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: tlsPort, targets: [a.port], tls: try twoCertificates(),
            extraListeners: plainListener(port)))
        defer { d.terminate() }
        // nghttp (h2c, then TLS): stdout is exactly the body. `-t 8` gives up on a stream that
        // has not ended after 8 s ("[ERROR] Timeout", "Some requests were not processed") and
        // still writes out what had arrived.
        for url in ["http://127.0.0.1:\(port)/big?n=5000000", "https://127.0.0.1:\(tlsPort)/big?n=5000000"] {
            let start = Date()
            let n = try runBounded(20, "nghttp", ["-t", "8", url])
            let took = Date().timeIntervalSince(start)
            let size = n.output.utf8.filter { $0 == UInt8(ascii: "x") }.count
            let ended = !n.output.contains("[ERROR]") && !n.output.contains("not processed")
            let messages = n.output.split(separator: "\n").filter { !$0.hasPrefix("xxxx") }.joined(separator: " | ")
            #expect(size == 5_000_000 && ended && took < 8,
                    "nghttp \(url): \(size) bytes of 5000000, stream ended: \(ended), after \(took) s: \(messages.suffix(300))")
        }
        // curl over TLS.
        let c = try curlTLS(tlsPort, path: "/big?n=5000000", ["--http2", "--max-time", "15", "-o", "/dev/null",
                                                              "-w", "%{http_version} %{http_code} %{size_download} %{exitcode} %{errormsg}"])
        #expect(c.output.hasPrefix("2 200 5000000 0"), "curl h2 over TLS: \(c.output)")
    }

    /// Sluice's own answers on h2 streams: a respond rule and a forward to an empty group.
    @Test func rulesAndSluicesOwnAnswersOnStreams() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port]), ("empty", [])], listener: [
            "rules:",
            "  - { priority: 1, when: { path: [\"/ping\"] }, then: { respond: { status: 200, content_type: text/plain, body: \"pong\\n\" } } }",
            "  - { priority: 2, when: { path: [\"/empty\"] }, then: { forward: empty } }",
        ]))
        defer { d.terminate() }
        let ping = try nghttp(["-v", "http://127.0.0.1:\(port)/ping"])
        #expect(ping.output.contains(":status: 200") && ping.output.contains("pong\n"), "\(ping.output)")
        #expect(ping.output.contains("content-type: text/plain"), "\(ping.output)")
        let s = try nghttp(["-ns", "http://127.0.0.1:\(port)/ping", "http://127.0.0.1:\(port)/empty",
                            "http://127.0.0.1:\(port)/other"])
        let codes = Dictionary(nghttpStats(s.output).map { ($0.path, $0.code) }, uniquingKeysWith: { x, _ in x })
        #expect(codes == ["/ping": 200, "/empty": 503, "/other": 200], "\(s.output)")
        #expect(try a.stats().paths == ["GET /other"], "only /other reached the target")
    }

    /// Over the header limits (here: more than 100 headers) one stream gets 431 and the
    /// connection serves the next stream.
    @Test func tooManyHeadersGet431AndTheConnectionStays() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let tlsPort = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpsConfig(port: tlsPort, targets: [a.port], tls: try twoCertificates(),
            extraListeners: plainListener(port)))
        defer { d.terminate() }
        let many = (1...120).flatMap { ["-H", "x-h\($0): v"] }
        let n = try nghttp(["-ns"] + many + ["http://127.0.0.1:\(port)/crowded"])
        #expect(nghttpStats(n.output).map(\.code) == [431], "nghttp h2c: \(n.output)")
        #expect(!n.output.contains("GOAWAY"), "\(n.output)")
        // curl over TLS: the 431 stream, then (--next) a normal one on the same connection.
        let ca = try TestCerts.path("ca.pem")
        let common = ["--http2", "-s", "--cacert", ca, "--resolve", "a.example:\(tlsPort):127.0.0.1", "--max-time", "10",
                      "-o", "/dev/null", "-w", "%{http_version} %{http_code}\n"]
        let c = try runBounded(30, "curl", ["-v"] + common + many + ["https://a.example:\(tlsPort)/crowded", "--next"]
            + common + ["https://a.example:\(tlsPort)/after"])
        #expect(c.output.contains("2 431\n") && c.output.contains("2 200\n"), "\(c.output)")
        #expect(c.output.contains("Re-using existing connection"), "the same connection: \(c.output)")
        #expect(try a.stats().paths == ["GET /after"])
        // Sluice's own answers are counted like any (SPEC §9): one 431 on each listener.
        let m = try metricsText(d)
        func total(_ prefix: String, _ label: String) -> Double {
            m.split(separator: "\n").filter { $0.hasPrefix(prefix) && $0.contains(label) }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        }
        #expect(total("sluice_requests_total{", "group=\"\",code=\"431\"") == 2, "\(m)")
        #expect(total("sluice_errors_total{", "kind=\"431\"") == 2, "\(m)")
    }

    // MARK: abuse

    /// The 2023 rapid reset: 2000 HEADERS + RST_STREAM pairs → GOAWAY ENHANCE_YOUR_CALM and
    /// close within a second, and (almost) nothing reaches the target; h2c and TLS.
    @Test(arguments: [false, true])
    func rapidResetIsCutOff(tls: Bool) throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tls ? httpsConfig(port: port, targets: [a.port], tls: try twoCertificates())
                                             : httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let r = try H2Hostile.run(port: port, mode: "rapid-reset", 2000, tls: tls)
        if tls { #expect(r["alpn"] as? String == "h2", "\(brief(r))") }
        expectCalmedDown(r)
        let seen = try a.stats().count
        print("rapid reset (tls \(tls)): the target saw \(seen) requests; \(brief(r))")
        #expect(seen <= 5, "reset streams must not pile up on the target: \(seen)")
        #expect(d.isRunning)
        // Counted by reason.
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_errors_total{listener=\"web\",kind=\"h2_rapid_reset\"}") == 1, "\(m)")
    }

    /// Other floods each end the connection with GOAWAY within a second.
    @Test(arguments: [("settings-flood", 1000), ("empty-data", 1000), ("continuation-flood", 200), ("ping-flood", 1000)])
    func floodsAreCutOff(mode: String, n: Int) throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let r = try H2Hostile.run(port: port, mode: mode, n)
        // A header block beyond the limit may also be answered as a protocol error.
        expectCalmedDown(r, codes: mode == "continuation-flood" ? ["ENHANCE_YOUR_CALM", "PROTOCOL_ERROR"] : ["ENHANCE_YOUR_CALM"])
        #expect(try a.stats().count == 0, "\(mode): nothing reaches the target")
        // The listener still serves.
        let ok = try nghttp(["-ns", "http://127.0.0.1:\(port)/after"])
        #expect(nghttpStats(ok.output).map(\.code) == [200], "\(ok.output)")
    }

    /// While rapid-reset floods hit the listener one after the other, a well-behaved client on
    /// the same listener gets all its answers.
    @Test func otherClientsAreNotSlowedByAFlood() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let stop = Atomic<Bool>(false)
        let reports = Mutex<[String]>([])
        let flood = Background<Int> {
            var runs = 0
            while !stop.load(ordering: .relaxed) {
                let r = (try? H2Hostile.run(port: port, mode: "rapid-reset", 2000, wait: 2)) ?? [:]
                let line = "goaway=\(r["goaway"] as? Bool ?? false) \(r["goaway_error"] ?? "nil") closed_after_ms=\(r["closed_after_ms"] ?? "nil")"
                reports.withLock { $0.append(line) }
                runs += 1
            }
            return runs
        }
        defer { stop.store(true, ordering: .relaxed); _ = flood.join() }
        try waitUntil("the first flood was answered") { reports.withLock { !$0.isEmpty } }
        let before = reports.withLock { $0.count }
        let start = Date()
        let r = try h2load("http://127.0.0.1:\(port)/fair", n: 500, c: 2, m: 8)
        let took = Date().timeIntervalSince(start)
        let during = reports.withLock { $0.count } - before
        stop.store(true, ordering: .relaxed)
        let runs = flood.join() ?? -1
        let all = reports.withLock { $0 }
        print("flood runs \(runs) (\(during) during h2load), h2load took \(took) s")
        #expect(r.succeeded == 500 && r.ok2xx == 500, "\(r.output)")
        #expect(took < 20, "h2load took \(took) s")
        // The first flood finished before h2load started; the loop was flooding again while
        // h2load ran (the run in flight when it ended is the second, at least).
        #expect(runs >= 2, "the floods ran while h2load did: \(during) finished during it, \(all)")
        #expect(all.allSatisfy { $0.hasPrefix("goaway=true ENHANCE_YOUR_CALM") }, "\(all)")
    }

    /// Below the bounds nothing happens: 20 ordinary streams, 20 answers, no GOAWAY.
    @Test func wellBehavedStreamsAreAnswered() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        // The script reads until --wait passes (the daemon rightly keeps the connection): 4 s
        // leaves room for a SYN retransmit (1 s) when the 20 parallel target connections
        // overflow the Python target's listen backlog of 5.
        let r = try H2Hostile.run(port: port, mode: "get", 20, wait: 4)
        #expect(r["headers_responses"] as? Int == 20, "\(brief(r))")
        #expect((r["statuses"] as? [String: Int]) == ["200": 20], "\(brief(r))")
        #expect(r["goaway"] as? Bool == false, "\(brief(r))")
        #expect(r["closed"] as? Bool == false, "\(brief(r))")
        let seen = try a.stats().count
        #expect(seen == 20, "the target saw \(seen)")
    }

    // MARK: lifecycle

    /// SIGTERM while a stream is in flight: the client is told GOAWAY at once (before its
    /// answer), the in-flight stream still completes with 200, and the daemon exits.
    @Test func sigtermSendsGoawayAndFinishesStreamsInFlight() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let client = Background<String> {
            (try? nghttp(["-v", "http://127.0.0.1:\(port)/slow?ms=1500"], seconds: 20).output) ?? "nghttp failed to run"
        }
        // The request is at the target (an event), then the daemon is told to stop.
        try waitUntil("the slow request reached the target") {
            ((try? a.stats().paths) ?? []).contains("GET /slow?ms=1500")
        }
        d.send(signal: SIGTERM)
        let out = client.join(seconds: 30) ?? "nghttp did not finish"
        #expect(out.contains("recv (stream_id=13) :status: 200"), "the in-flight stream completes: \(out)")
        #expect(out.contains("\"path\": \"/slow\""), "\(out)")
        let goaway = out.range(of: "recv GOAWAY frame")
        let status = out.range(of: ":status: 200")
        #expect(goaway != nil, "the client is sent GOAWAY when the daemon stops: \(out)")
        if let g = goaway, let s = status {
            #expect(g.lowerBound < s.lowerBound, "GOAWAY before the in-flight answer, not after: \(out)")
        }
        #expect(d.waitForExit(seconds: 10) == 0, "\(d.log)")
    }
}
