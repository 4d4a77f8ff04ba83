import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Reads one response from a kept-open connection (Content-Length framed), leaving the
/// connection open.
func readOneResponse(_ fd: Int32) throws -> HTTPClient.Response {
    var bytes: [UInt8] = []
    var b = [UInt8](repeating: 0, count: 4096)
    while true {
        if let r = HTTPClient.parse(bytes).first, let cl = r.header("content-length").flatMap(Int.init),
           r.body.count == cl {
            return r
        }
        let n = recv(fd, &b, b.count, 0)
        if n <= 0 {
            throw TestSocket.Failure("connection ended after \(bytes.count) bytes: \(String(decoding: bytes, as: UTF8.self))")
        }
        bytes += b[0..<n]
    }
}

/// What Sluice answers and records: exact-status metrics, access-log lines of rejected
/// requests, HTTP/1.0 keep-alive, 503 when no target can be picked.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HTTPAnswersTests {
    private static let ownRules = [
        "rules:",
        "  - { priority: 10, when: { path: [\"/ping\"] }, then: { respond: { status: 200, content_type: text/plain, body: \"pong\" } } }",
        "  - { priority: 20, when: { path: [\"/old/*\"] }, then: { redirect: { status: 301, path: \"/new/#{path}\" } } }",
        "  - { priority: 30, when: { path: [\"/void\"] }, then: { forward: empty } }",
    ]

    @Test func requestsTotalCountsExactStatusesAndOwnAnswers() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let metricsPort = try TestSocket.freePort()
        var yaml = httpConfig(port: port, groups: [("app", [a.port]), ("empty", [])], listener: Self.ownRules)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-m-\(UUID().uuidString)").path
        yaml += "control:\n  socket: \(dir)/c.sock\n  state: \(dir)/s.json\n  metrics: 127.0.0.1:\(metricsPort)\n"
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate(); try? FileManager.default.removeItem(atPath: dir) }

        for _ in 0..<2 { #expect(try get(port, "/").status == 200) }
        #expect(try get(port, "/status/404").status == 404)
        #expect(try get(port, "/ping").status == 200)
        #expect(try get(port, "/old/x").status == 301)
        #expect(try get(port, "/void").status == 503)
        #expect(try HTTPClient.request(port: port, "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").status == 400)
        #expect(try get(port, "/" + String(repeating: "a", count: 17_000)).status == 414)

        let text = try runTool("curl", ["-s", "http://127.0.0.1:\(metricsPort)/metrics"]).output
        let lines = Set(text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("sluice_requests_total{") })
        let expected: Set<String> = [
            "sluice_requests_total{listener=\"web\",group=\"app\",code=\"200\"} 2",
            "sluice_requests_total{listener=\"web\",group=\"app\",code=\"404\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"\",code=\"200\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"\",code=\"301\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"empty\",code=\"503\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"\",code=\"400\"} 1",
            "sluice_requests_total{listener=\"web\",group=\"\",code=\"414\"} 1",
        ]
        #expect(lines == expected, "\(lines.sorted())")
    }

    @Test func rejectedRequestsAreLoggedWithTheirDesyncClassAndReason() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let logPath = dir.appendingPathComponent("access.log").path
        var yaml = httpConfig(port: port, groups: [("app", [a.port])], listener: ["max_request_body: 10", "max_headers: 20"])
        yaml = yaml.replacingOccurrences(of: "access_log: off", with: "access_log: \"\(logPath)\"")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }

        // A compliant request first: its slot's fields must not leak into the next lines.
        #expect(try get(port, "/fine").status == 200)
        let cases: [(raw: String, status: Int)] = [
            ("POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            ("POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501),
            ("GET /" + String(repeating: "a", count: 17_000) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414),
            ("GET /many HTTP/1.1\r\nHost: h\r\n" + (0..<30).map { "X-\($0): v\r\n" }.joined() + "\r\n", 431),
            ("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", 413),
            ("GET /sp HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        ]
        for c in cases {
            #expect(try HTTPClient.request(port: port, c.raw).status == c.status, "\(c.raw.prefix(40))")
        }
        var records: [[String: Any]] = []
        try waitUntil("every request is in the access log") {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            records = text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            return records.count >= cases.count + 1
        }
        #expect(records.count == cases.count + 1)
        func record(_ i: Int) -> String {
            let r = records[i]
            return "\(r["status"] ?? "-") \(r["method"] ?? "-") \(r["path"] ?? "-") \(r["desync_class"] ?? "-") "
                + "\(r["desync_reason"] as? String ?? "null") \(r["group"] is NSNull ? "null" : "\(r["group"] ?? "-")")"
        }
        #expect(record(0) == "200 GET /fine compliant null app")
        #expect(record(1) == "400 POST /cl severe MultipleContentLength null")
        #expect(record(2) == "501 POST /te severe BadTransferEncoding null")
        #expect(record(3) == "414   compliant null null", "no request line could be read")
        #expect(record(4) == "431 GET /many compliant null null")
        #expect(record(5) == "413 POST /big compliant null null")
        #expect(record(6).hasPrefix("400 GET /sp severe "), "\(record(6))")
        for i in 1..<records.count {
            #expect((records[i]["bytes_out"] as? Int ?? 0) < 200, "bytes of one answer, not accumulated: \(record(i))")
        }
    }

    @Test func http10KeepAliveOnlyWhenAsked() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port]), ("empty", [])],
                                                    listener: Self.ownRules))
        defer { d.terminate() }
        for path in ["/", "/ping", "/old/x"] {
            // Asked: the answer says keep-alive and the connection carries a second request.
            let fd = try TestSocket.connect(port: port, timeoutSeconds: 5)
            defer { close(fd) }
            for round in 0..<2 {
                try TestSocket.sendAll(fd, Array("GET \(path) HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n".utf8))
                let r = try readOneResponse(fd)
                #expect(r.status != 0 && r.status < 400, "\(path) round \(round): \(r.status)")
                #expect(r.header("connection")?.lowercased() == "keep-alive", "\(path) round \(round)")
            }
            // Not asked: the answer, then the connection ends.
            let plain = try TestSocket.connect(port: port, timeoutSeconds: 5)
            defer { close(plain) }
            try TestSocket.sendAll(plain, Array("GET \(path) HTTP/1.0\r\nHost: h\r\n\r\n".utf8))
            let all = try TestSocket.receiveAll(plain)  // EOF within the timeout, or it throws
            let rs = HTTPClient.parse(all)
            #expect(rs.count == 1 && rs.first?.header("connection")?.lowercased() != "keep-alive", "\(path)")
        }
    }

    @Test func aGroupWithOnlyDrainingTargetsAnswers503() throws {
        let slow = try HTTPBackend(name: "slow")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [])],
                                                    group: ["deregistration_delay: 30s"]))
        defer { d.terminate() }
        let target = "127.0.0.1:\(slow.port)"
        #expect(try ctl(d, ["targets", "register", "app", target]).status == 0)
        try waitUntil("the registered target serves") { (try? get(port, "/").status) == 200 }
        // A request in flight keeps the target listed while it drains.
        let result = SendBox()
        let t = Thread {
            let r = try? get(port, "/slow?ms=4000")
            result.set("\(r?.status ?? 0)")
        }
        let before = try slow.stats().count
        t.start()
        try waitUntil("the slow request is in flight") { ((try? slow.stats().count) ?? 0) > before }
        #expect(try ctl(d, ["targets", "deregister", "app", target]).status == 0)
        var statuses: [Int] = []
        try waitUntil("new requests are refused") {
            let s = (try? get(port, "/").status) ?? 0
            statuses.append(s)
            return s == 503
        }
        #expect(!statuses.contains(502), "\(statuses)")
        let r = try get(port, "/")
        #expect(r.status == 503 && r.text == "service unavailable\n")
        #expect(try targetStates(d, group: "app")[target] == "draining")
    }

    @Test func aGroupWhoseTargetsAllWeighZeroAnswers503() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        var yaml = httpConfig(port: port, groups: [("app", [a.port])])
        yaml = yaml.replacingOccurrences(of: "{ address: \"127.0.0.1:\(a.port)\" }",
                                         with: "{ address: \"127.0.0.1:\(a.port)\", weight: 0 }")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let r = try get(port, "/")
        #expect(r.status == 503 && r.text == "service unavailable\n")
        #expect(try a.stats().count == 0)
    }
}
