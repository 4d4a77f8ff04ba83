#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import SluiceControl

@Suite("API types")
struct APITypesTests {
    @Test func targetInfoUsesSnakeCaseAndStaticKey() throws {
        let t = TargetInfo(address: "[::1]:80", zone: nil, weight: 3, state: "healthy", inFlight: 2, isStatic: true)
        let json = String(decoding: try ControlRouter.encoder().encode(t), as: UTF8.self)
        #expect(json == #"{"address":"[::1]:80","in_flight":2,"reason":null,"state":"healthy","static":true,"weight":3}"#)
        #expect(try JSONDecoder().decode(TargetInfo.self, from: Data(json.utf8)) == t)
    }

    /// SPEC §6: `reason` is listed for every target, `null` when there is none; with a reason, a string.
    @Test func reasonIsAlwaysPresent() throws {
        let plain = TargetInfo(address: "a:1", state: "healthy")
        let failing = TargetInfo(address: "b:1", zone: "z", state: "unhealthy", reason: "connect_refused",
                                 registeredAt: "2025-01-01T00:00:00.000Z")
        let g = GroupInfo(name: "web", proto: "http", algorithm: "round_robin", crossZone: "true", failOpen: false,
                          targets: [plain, failing])
        let data = try ControlRouter.encoder().encode([g])
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        let targets = try #require(object.first?["targets"] as? [[String: Any]])
        #expect(targets.count == 2)
        #expect(targets[0]["reason"] is NSNull)
        #expect(targets[1]["reason"] as? String == "connect_refused")
        #expect(targets[1]["zone"] as? String == "z" && targets[1]["registered_at"] as? String != nil)
        #expect(targets[0]["zone"] == nil && targets[0]["registered_at"] == nil)
        #expect(try JSONDecoder().decode([GroupInfo].self, from: data) == [g])
    }

    /// Both routes that list targets go through the same encoding.
    @Test func targetGroupRoutesListReasonNull() throws {
        let router = ControlRouter(backend: FakeBackend())
        for target in ["/v1/target-groups", "/v1/target-groups/web"] {
            guard case .respond(let r) = router.route(HTTPRequest(method: "GET", target: target)) else {
                Issue.record("no response for \(target)"); continue
            }
            #expect(r.status == 200)
            #expect(String(decoding: r.body, as: UTF8.self).contains(#""reason":null"#), "\(target)")
        }
    }

    @Test func groupAndRequestsRoundTrip() throws {
        let g = GroupInfo(name: "web", proto: "tcp", algorithm: "flow_hash", crossZone: "false", failOpen: true, targets: [])
        let json = String(decoding: try ControlRouter.encoder().encode(g), as: UTF8.self)
        #expect(json.contains(#""protocol":"tcp""#) && json.contains(#""cross_zone":"false""#) && json.contains(#""fail_open":true"#))
        #expect(try JSONDecoder().decode(GroupInfo.self, from: Data(json.utf8)) == g)
        let r = try JSONDecoder().decode(RegisterRequest.self, from: Data(#"{"address":"a:1"}"#.utf8))
        #expect(r == RegisterRequest(address: "a:1"))
        let u = try JSONDecoder().decode(UpdateRequest.self, from: Data(#"{"weight":0}"#.utf8))
        #expect(u == UpdateRequest(weight: 0))
    }

    @Test func controlErrorsHaveStatusesAndCodes() {
        #expect(ControlError.notFound("x").status == 404)
        #expect(ControlError.badRequest("x").status == 400)
        #expect(ControlError.conflict("x").status == 409)
        #expect(ControlError.forbidden("x").status == 403)
        #expect(ControlError.payloadTooLarge("x").status == 413)
        #expect(ControlError.internal("x").status == 500)
        let e = ControlError(status: 409, body: APIErrorBody(code: "conflict", message: "m"))
        #expect(e == .conflict("m"))
    }

    @Test func rfc3339Formatting() {
        #expect(RFC3339.format(secondsSinceEpoch: 0) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(secondsSinceEpoch: 1_735_787_045.678) == "2025-01-02T03:04:05.678Z")
        #expect(ControlEvent.now().hasSuffix("Z"))
        // `time_t(_:)` of a non-finite or huge Double traps: such times are clamped to RFC 3339's years.
        #expect(RFC3339.format(secondsSinceEpoch: .nan) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(secondsSinceEpoch: .infinity) == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339.format(secondsSinceEpoch: 1e300) == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339.format(secondsSinceEpoch: -.infinity) == "0001-01-01T00:00:00.000Z")
    }
}

@Suite("HTTP request parsing and routing without sockets")
struct HTTPParsingTests {
    @Test func parsesPipelinedRequestsWithBodies() {
        var p = ControlRequestParser()
        p.append(Array("POST /a HTTP/1.1\r\nContent-Length: 3\r\nX-Y:  z \r\n\r\nabcGET /b?x=1%202&y=a+b HTTP/1.0\r\n\r\n".utf8))
        guard case .request(let first) = p.next() else { Issue.record("no first"); return }
        #expect(first.method == "POST" && first.body == Array("abc".utf8) && first.header("x-y") == "z")
        #expect(first.keepAlive)
        guard case .request(let second) = p.next() else { Issue.record("no second"); return }
        #expect(second.path == "/b" && second.query == ["x": "1 2", "y": "a b"])
        #expect(!second.keepAlive)
        do { let r = p.next(); #expect(r == .needMore) }
    }

    @Test func resumesAcrossPartialReads() {
        var p = ControlRequestParser()
        p.append(Array("GET /v1/status HT".utf8))
        do { let r = p.next(); #expect(r == .needMore) }
        p.append(Array("TP/1.1\r\nContent-Length: 2\r\n\r\n{".utf8))
        do { let r = p.next(); #expect(r == .needMore) }
        p.append([UInt8(ascii: "}")])
        guard case .request(let r) = p.next() else { Issue.record("no request"); return }
        #expect(r.body == Array("{}".utf8))
    }

    @Test func limitsAndMalformedInput() {
        var big = ControlRequestParser()
        big.append([UInt8](repeating: UInt8(ascii: "a"), count: ControlRequestParser.maxHeadBytes + 10))
        guard case .failure(let e1) = big.next() else { Issue.record("no failure"); return }
        #expect(e1.status == 413)
        var chunked = ControlRequestParser()
        chunked.append(Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        guard case .failure(let e2) = chunked.next() else { Issue.record("no failure"); return }
        #expect(e2.status == 400)
        var garbage = ControlRequestParser()
        garbage.append(Array("HELLO\r\n\r\n".utf8))
        guard case .failure(let e3) = garbage.next() else { Issue.record("no failure"); return }
        #expect(e3.status == 400)
        var twoLengths = ControlRequestParser()
        twoLengths.append(Array("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".utf8))
        guard case .failure(let e4) = twoLengths.next() else { Issue.record("no failure"); return }
        #expect(e4.status == 400)
        // Content-Length is 1*DIGIT: `Int` alone took a sign.
        for length in ["+1", "-1", "1 1", "0x1", "99999999999999999999", ""] {
            var signed = ControlRequestParser()
            signed.append(Array("POST / HTTP/1.1\r\nContent-Length: \(length)\r\n\r\na".utf8))
            guard case .failure(let e5) = signed.next() else { Issue.record("no failure for \(length)"); continue }
            #expect(e5.status == 400 || e5.status == 413, "\(length)")
        }
    }

    /// The head is SluiceHTTP's: what a strict proxy would not forward is refused, and the stream
    /// stays failed.
    @Test(arguments: [
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
    ])
    func smugglingShapesAreRefused(_ text: String) {
        var p = ControlRequestParser()
        p.append(Array(text.utf8))
        guard case .failure(let e) = p.next() else { Issue.record("accepted \(text.debugDescription)"); return }
        #expect(e.status == 400)
        p.append(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(p.next() == .failure(e))
    }

    @Test func toleratedShapesAndBodies() {
        var p = ControlRequestParser()
        p.append(Array("GET /a HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nxyDELETE /b HTTP/1.1\r\n\r\n".utf8))
        guard case .request(let a) = p.next() else { Issue.record("no first"); return }
        #expect(a.method == "GET" && a.body == Array("xy".utf8) && a.headers.count == 2)
        guard case .request(let b) = p.next() else { Issue.record("no second"); return }
        #expect(b.method == "DELETE" && b.target == "/b" && b.body.isEmpty)
        #expect(p.buffered == 0)
        var big = ControlRequestParser()
        big.append(Array("POST / HTTP/1.1\r\nContent-Length: \(ControlRequestParser.maxBodyBytes + 1)\r\n\r\n".utf8))
        guard case .failure(let e) = big.next() else { Issue.record("no failure"); return }
        #expect(e.status == 413)
    }

    @Test func routerMatchesWithoutSockets() {
        let router = ControlRouter(backend: FakeBackend())
        guard case .events(let group) = router.route(HTTPRequest(method: "GET", target: "/v1/events?group=w%20b")) else {
            Issue.record("not events"); return
        }
        #expect(group == "w b")
        guard case .respond(let r) = router.route(HTTPRequest(method: "GET", target: "/v1/target-groups/")) else {
            Issue.record("no response"); return
        }
        #expect(r.status == 200)
    }

    @Test func durations() {
        #expect(DurationText.parseNanoseconds("5m") == 300_000_000_000)
        #expect(DurationText.parseNanoseconds("1h30m") == 5_400_000_000_000)
        #expect(DurationText.parseNanoseconds("250ms") == 250_000_000)
        #expect(DurationText.parseNanoseconds("1.5s") == 1_500_000_000)
        #expect(DurationText.parseNanoseconds("10") == 10_000_000_000)
        #expect(DurationText.parseNanoseconds("soon") == nil)
        #expect(DurationText.parseNanoseconds("5x") == nil)
        #expect(DurationText.parseNanoseconds("") == nil)
        // Each `UInt64(_:)` in the parser is of a value proven in range; these sit at and past the edges.
        #expect(DurationText.parseNanoseconds("17999999999") != nil)
        #expect(DurationText.parseNanoseconds("18000000000") == nil)
        #expect(DurationText.parseNanoseconds("1e400") == nil)
        #expect(DurationText.parseNanoseconds("nan") == nil)
        #expect(DurationText.parseNanoseconds("-1") == nil)
        #expect(DurationText.parseNanoseconds("99999999999999999999d") == nil)
        #expect(DurationText.parseNanoseconds(String(repeating: "9", count: 400) + "s") == nil)
        #expect(DurationText.parseNanoseconds("5000000000h") == nil)
    }
}

@Suite("Event bus")
struct EventBusTests {
    @Test func deliversToEverySubscriberInOrder() {
        let bus = EventBus()
        let a = bus.subscribe()
        let b = bus.subscribe()
        for i in 0..<3 { bus.publish(ControlEvent(kind: .reload, message: "\(i)")) }
        #expect((0..<3).map { _ in a.next(timeout: 1)?.message } == ["0", "1", "2"])
        #expect(b.next(timeout: 1)?.message == "0")
        #expect(a.next(timeout: 0.05) == nil)
    }

    @Test func slowSubscriberDropsTheOldest() {
        let bus = EventBus()
        let s = bus.subscribe()
        for i in 0..<(EventBus.maxBacklog + 5) { bus.publish(ControlEvent(time: "t", kind: .reload, message: "\(i)")) }
        #expect(s.pending == EventBus.maxBacklog)
        #expect(s.dropped == 5)
        #expect(s.next(timeout: 0)?.message == "5")
    }

    /// Blocking waits run on their own threads: on a 2-core machine the cooperative pool can
    /// be full of other suites' blocking work, so a detached task might not even start.
    @Test func nextBlocksUntilPublishAndUnsubscribeWakesIt() {
        let bus = EventBus()
        let s = bus.subscribe()
        let got = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        let waiting = DispatchSemaphore(value: 0)
        Thread {
            waiting.signal()
            let m = s.next(timeout: 5)?.message
            got.withLock { $0 = m }
            done.signal()
        }.start()
        waiting.wait()
        bus.publish(ControlEvent(kind: .drained, message: "hi"))
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(got.withLock { $0 } == "hi")
        let ended = DispatchSemaphore(value: 0)
        let endedValue = Mutex<Bool>(true)
        Thread {
            waiting.signal()
            let e = s.next(timeout: 10)
            endedValue.withLock { $0 = e == nil }
            ended.signal()
        }.start()
        waiting.wait()
        let start = Date()
        bus.unsubscribe(s)
        #expect(ended.wait(timeout: .now() + 10) == .success)
        #expect(endedValue.withLock { $0 })
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(bus.subscriberCount == 0)
        bus.publish(ControlEvent(kind: .reload))
        #expect(s.pending == 0)
    }
}

@Suite("State file")
struct StateFileTests {
    let regs = [
        Registration(group: "web", address: "10.0.0.5:8080", zone: "zone-b", weight: 2, registeredAt: "2025-01-02T03:04:05.000Z"),
        Registration(group: "api", address: "[::1]:80", zone: nil, weight: 1, registeredAt: "2025-01-02T03:04:06.000Z"),
    ]

    @Test func roundTripsInANewDirectoryAndLeavesNoTmpFile() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/state/sub/registrations.json"
        #expect(try StateFile.load(path: path) == [])
        try StateFile.save(regs, path: path)
        #expect(try StateFile.load(path: path) == regs)
        try StateFile.save([regs[0]], path: path)
        #expect(try StateFile.load(path: path) == [regs[0]])
        #expect(access(path + ".tmp", F_OK) != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/state/sub") == ["registrations.json"])
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        #expect(object["version"] as? Int == 1)
        let first = (object["registrations"] as! [[String: Any]])[0]
        #expect(first["registered_at"] as? String == "2025-01-02T03:04:05.000Z")
    }

    @Test func corruptFileErrorNamesThePath() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/state.json"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("{\"version\": 1, \"registrations\": [{\"group\": 3".utf8)))
        do {
            _ = try StateFile.load(path: path)
            Issue.record("loaded a corrupt file")
        } catch {
            #expect(error.path == path)
            #expect(error.description.contains(path))
            #expect(error.description.contains("not a state file") || error.description.contains("corrupt"))
        }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(#"{"version": 2, "registrations": []}"#.utf8)))
        #expect(throws: StateFileError.self) { try StateFile.load(path: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(#"{"version": 1, "registrations": [{"group":"g"}]}"#.utf8)))
        do {
            _ = try StateFile.load(path: path)
            Issue.record("loaded a file with a missing key")
        } catch {
            #expect(error.description.contains("address"))
        }
    }

    @Test func unreadablePathIsAnError() throws {
        let dir = TempDir()
        defer { dir.remove() }
        // A directory where the file should be cannot be read as a file.
        #expect(throws: StateFileError.self) { try StateFile.load(path: dir.path) }
    }
}

@Suite("Prometheus text")
struct MetricsWriterTests {
    @Test func helpAndTypeOncePerNameAndEscapedLabels() {
        var w = MetricsWriter()
        w.counter("sluice_connections_total", help: "Connections accepted.", labels: [("listener", "web")], value: 10)
        w.counter("sluice_connections_total", help: "Connections accepted.", labels: [("listener", "a\"b\\c\nd")], value: 2)
        w.gauge("sluice_fail_open", help: "1 while failing open.\nline", labels: [("group", "web")], value: 1.0)
        w.histogram("sluice_request_duration_seconds", help: "Request latency.", labels: [("listener", "web")],
                    buckets: [(le: 0.005, count: 1), (le: 0.1, count: 3), (le: 1, count: 4)], sum: 0.75, count: 5)
        #expect(w.text == """
        # HELP sluice_connections_total Connections accepted.
        # TYPE sluice_connections_total counter
        sluice_connections_total{listener="web"} 10
        sluice_connections_total{listener="a\\"b\\\\c\\nd"} 2
        # HELP sluice_fail_open 1 while failing open.\\nline
        # TYPE sluice_fail_open gauge
        sluice_fail_open{group="web"} 1
        # HELP sluice_request_duration_seconds Request latency.
        # TYPE sluice_request_duration_seconds histogram
        sluice_request_duration_seconds_bucket{listener="web",le="0.005"} 1
        sluice_request_duration_seconds_bucket{listener="web",le="0.1"} 3
        sluice_request_duration_seconds_bucket{listener="web",le="1"} 4
        sluice_request_duration_seconds_bucket{listener="web",le="+Inf"} 5
        sluice_request_duration_seconds_sum 0.75
        sluice_request_duration_seconds_count 5

        """.replacingOccurrences(of: "sum 0.75", with: "sum{listener=\"web\"} 0.75")
            .replacingOccurrences(of: "count 5", with: "count{listener=\"web\"} 5"))
    }

    @Test func specialValues() {
        #expect(MetricsWriter.format(.infinity) == "+Inf")
        #expect(MetricsWriter.format(-.infinity) == "-Inf")
        #expect(MetricsWriter.format(.nan) == "NaN")
        #expect(MetricsWriter.format(2.5) == "2.5")
        var w = MetricsWriter()
        w.gauge("g", help: "h", value: 3)
        #expect(w.text == "# HELP g h\n# TYPE g gauge\ng 3\n")
    }
}

@Suite("systemd notify")
struct SystemdNotifyTests {
    private func receive(_ fd: Int32) -> String? {
        guard ControlSocket.waitReadable(fd, milliseconds: 2000) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 512, 0) }
        return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
    }

    @Test func sendsADatagramToAPathSocket() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/notify"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        #expect(ControlSocket.withUnixAddress(path) { bind(fd, $0, $1) } == 0)
        #expect(SystemdNotify.send("READY=1\nSTATUS=serving", socketPath: path))
        #expect(receive(fd) == "READY=1\nSTATUS=serving")

        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(SystemdNotify.send("STOPPING=1"))
        #expect(receive(fd) == "STOPPING=1")
        #expect(!SystemdNotify.send("X=1", socketPath: dir.path + "/nobody"))
    }

    @Test func sendsToAnAbstractSocket() throws {
        let name = "@sluice-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        #expect(ControlSocket.withUnixAddress(name) { bind(fd, $0, $1) } == 0)
        #expect(SystemdNotify.send("WATCHDOG=1", socketPath: name))
        #expect(receive(fd) == "WATCHDOG=1")
    }

    @Test func watchdogInterval() {
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: nil, ourPID: 10) == 30_000_000)
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: "10", ourPID: 10) == 30_000_000)
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: "11", ourPID: 10) == nil)
        #expect(SystemdNotify.watchdogInterval(usec: "0", pid: nil, ourPID: 10) == nil)
        #expect(SystemdNotify.watchdogInterval(usec: "x", pid: nil, ourPID: 10) == nil)
        #expect(SystemdNotify.watchdogInterval(usec: nil, pid: nil, ourPID: 10) == nil)
    }
}
