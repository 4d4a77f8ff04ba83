import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Request smuggling attempts never produce a second request at a target.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct DesyncTests {
    static let attacks: [(String, String)] = [
        ("CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("TE.TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("TE space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("CL CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("obs-fold TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("bare LF", "POST / HTTP/1.1\nHost: x\nContent-Length: 4\nTransfer-Encoding: chunked\n\n2c\nGET /smuggled HTTP/1.1\nHost: x\nX: y\n\n\n0\n\n"),
    ]

    @Test(arguments: ["defensive", "strictest"])
    func smugglingNeverReachesATargetAsASecondRequest(mode: String) throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])],
                                                    listener: ["desync_mitigation: \(mode)"]))
        defer { d.terminate() }
        for (name, raw) in DesyncTests.attacks {
            // The attack, then an innocent request on the same connection (to catch a
            // poisoned target connection).
            _ = try HTTPClient.exchange(port: port, raw + "GET /innocent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let victim = try get(port, "/victim")
            #expect(victim.json["path"] as? String == "/victim", "\(name) in \(mode): \(victim.status)")
        }
        let paths = try a.stats().paths
        #expect(!paths.contains { $0.contains("smuggled") }, "a smuggled request reached the target in \(mode): \(paths)")
    }

    /// Monitor mode forwards everything, but framing is normalised: every request a target
    /// sees is one Sluice parsed and logged as its own, never bytes hidden in a body.
    @Test func monitorModeTargetsSeeOnlyWhatSluiceParsed() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var yaml = httpConfig(port: port, groups: [("app", [a.port])], listener: ["desync_mitigation: monitor"])
        yaml = yaml.replacingOccurrences(of: "access_log: off", with: "access_log: \(logPath)")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        for (_, raw) in DesyncTests.attacks {
            _ = try HTTPClient.exchange(port: port, raw + "GET /innocent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        }
        let seen = try a.stats().paths
        var forwarded: [String] = []
        try waitUntil("the access log lists every forwarded request") {
            let lines = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n")
            forwarded = lines.compactMap { line -> String? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      o["target"] is String, (o["status"] as? Int ?? 0) < 400 else { return nil }
                return "\(o["method"] as? String ?? "") \(o["path"] as? String ?? "")"
            }
            return forwarded.count >= seen.count
        }
        #expect(forwarded.sorted() == seen.sorted())
    }

    @Test func defensiveRejectsSevereAndStrictestRejectsAmbiguous() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let severe = try HTTPClient.request(port: port,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        #expect(severe.status == 400)
        #expect(try a.stats().count == 0)
    }

    /// A listener with an access log and metrics, in desync mode `mode`.
    private struct Logged {
        let d: SluicedProcess
        let port: UInt16
        let metricsPort: UInt16
        let logPath: String
        let dir: String

        init(mode: String, target: UInt16) throws {
            port = try TestSocket.freePort()
            metricsPort = try TestSocket.freePort()
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-desync-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            logPath = dir + "/access.log"
            var yaml = httpConfig(port: port, groups: [("app", [target])], listener: ["desync_mitigation: \(mode)"])
            yaml = yaml.replacingOccurrences(of: "access_log: off", with: "access_log: \"\(logPath)\"")
            yaml += "control:\n  socket: \(dir)/c.sock\n  state: \(dir)/s.json\n  metrics: 127.0.0.1:\(metricsPort)\n"
            d = try SluicedProcess(yaml: yaml)
        }

        func stop() {
            d.terminate()
            try? FileManager.default.removeItem(atPath: dir)
        }

        /// "status method path class reason group" of each access-log record, once `count` are there.
        func records(_ count: Int) throws -> [String] {
            var out: [String] = []
            try waitUntil("\(count) access-log records") {
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                out = text.split(separator: "\n").compactMap { line -> String? in
                    guard let r = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                    return "\(r["status"] ?? "-") \(r["method"] ?? "-") \(r["path"] ?? "-") \(r["desync_class"] ?? "-") "
                        + "\(r["desync_reason"] as? String ?? "null") \(r["group"] as? String ?? "null")"
                }
                return out.count >= count
            }
            return out
        }

        /// The listener's `sluice_errors_total`, `sluice_requests_total` and `sluice_desync_total` lines.
        func metrics() throws -> Set<String> {
            let text = try runTool("curl", ["-s", "http://127.0.0.1:\(metricsPort)/metrics"]).output
            return Set(text.split(separator: "\n").map(String.init).filter {
                ($0.hasPrefix("sluice_errors_total{") || $0.hasPrefix("sluice_requests_total{") || $0.hasPrefix("sluice_desync_total{"))
                    && !$0.hasSuffix(" 0")
            })
        }
    }

    static let badChunks = ["zz\r\n\r\n", "3\r\nabc\r\nQQ\r\n"]

    /// SPEC §3 lists invalid chunk sizes among the desync checks: the client's fault, a 400 in
    /// every mode (the body's end is lost, so it cannot be forwarded even in monitor). A
    /// broken body that came with the head never reaches a target.
    @Test(arguments: ["monitor", "defensive", "strictest"])
    func invalidChunkSizeWithTheHeadIs400WithoutContactingATarget(mode: String) throws {
        let a = try HTTPBackend(name: "a")
        let s = try Logged(mode: mode, target: a.port)
        defer { s.stop() }
        for body in Self.badChunks {
            // Read to the end: Sluice answers and closes the client connection.
            let bytes = try HTTPClient.exchange(port: s.port, "POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            let r = HTTPClient.parse(bytes)
            #expect(r.map(\.status) == [400], "\(mode) \(body.debugDescription): \(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(try a.acceptedConnections() == 0, "no target was contacted in \(mode)")
        #expect(try get(s.port, "/after").status == 200)
        #expect(try s.records(3) == ["400 POST /bad severe InvalidChunkSize null", "400 POST /bad severe InvalidChunkSize null",
                                     "200 GET /after compliant null app"])
        let m = try s.metrics()
        #expect(m == [
            "sluice_errors_total{listener=\"web\",kind=\"400\"} 2",
            "sluice_requests_total{listener=\"web\",group=\"\",code=\"400\"} 2",
            "sluice_requests_total{listener=\"web\",group=\"app\",code=\"200\"} 1",
            "sluice_desync_total{listener=\"web\",class=\"severe\"} 2",
            "sluice_desync_total{listener=\"web\",class=\"compliant\"} 1",
        ], "\(mode): \(m.sorted())")
    }

    /// A body that breaks after part of it went to the target: 400 to the client (not a 502
    /// blamed on the target), the client's connection closed, and the target's connection,
    /// which holds a cut-off body, closed and never reused.
    @Test(arguments: ["monitor", "defensive", "strictest"])
    func invalidChunkSizeMidBodyIs400AndTheTargetConnectionIsDropped(mode: String) throws {
        let a = try HTTPBackend(name: "a")
        let s = try Logged(mode: mode, target: a.port)
        defer { s.stop() }
        let fd = try TestSocket.connect(port: s.port, timeoutSeconds: 10)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("POST /mid HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n".utf8))
        // Each look at the backend's count is a connection of its own, counted by the next look.
        var looks = 0
        func targetConnections() throws -> Int {
            defer { looks += 1 }
            return try a.acceptedConnections() - looks
        }
        var seen = -1
        try waitUntil("the request reached the target") {
            seen = (try? targetConnections()) ?? -1
            return seen >= 1
        }
        #expect(seen == 1)
        try TestSocket.sendAll(fd, Array("QQ\r\n".utf8))
        let bytes = try TestSocket.receiveAll(fd)  // EOF: Sluice closed the client connection
        #expect(HTTPClient.parse(bytes).map(\.status) == [400], "\(mode): \(String(decoding: bytes, as: UTF8.self))")
        // The next request needs a new target connection: the broken one was not pooled.
        #expect(try get(s.port, "/after").json["path"] as? String == "/after")
        #expect(try targetConnections() == 2, "the target connection with the cut-off body was reused in \(mode)")
        #expect(try a.stats().paths == ["GET /after"])
        #expect(try s.records(2) == ["400 POST /mid severe InvalidChunkSize app", "200 GET /after compliant null app"])
        let m = try s.metrics()
        #expect(m == [
            "sluice_errors_total{listener=\"web\",kind=\"400\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"app\",code=\"400\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"app\",code=\"200\"} 1",
            "sluice_desync_total{listener=\"web\",class=\"severe\"} 1",
            "sluice_desync_total{listener=\"web\",class=\"compliant\"} 1",
        ], "\(mode): \(m.sorted())")
    }

    /// Differing Content-Length values are severe: defensive and strictest answer 400; monitor
    /// forwards (SPEC: "monitor forwards all"), framed by the first value, and the target
    /// gets that one value, so it frames the body as Sluice did.
    @Test(arguments: ["monitor", "defensive", "strictest"])
    func differingContentLengths(mode: String) throws {
        let a = try HTTPBackend(name: "a")
        let s = try Logged(mode: mode, target: a.port)
        defer { s.stop() }
        let fd = try TestSocket.connect(port: s.port, timeoutSeconds: 10)
        defer { close(fd) }
        // The second request on the connection starts right after the first value's body.
        try TestSocket.sendAll(fd, Array(("POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc"
            + "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").utf8))
        let responses = HTTPClient.parse(try TestSocket.receiveAll(fd))
        if mode == "monitor" {
            #expect(responses.map(\.status) == [200, 200])
            let first = responses.first?.json ?? [:]
            #expect(first["path"] as? String == "/cl")
            #expect(first["body_len"] as? Int == 3)
            #expect((first["headers"] as? [String: Any])?["content-length"] as? String == "3")
            #expect(try a.stats().paths == ["POST /cl", "GET /next"])
            #expect(try s.records(2) == ["200 POST /cl severe MultipleContentLength app", "200 GET /next compliant null app"])
        } else {
            #expect(responses.map(\.status) == [400], "\(mode): the connection closes after the answer")
            #expect(try a.stats().count == 0)
            #expect(try s.records(1) == ["400 POST /cl severe MultipleContentLength null"])
        }
    }
}
