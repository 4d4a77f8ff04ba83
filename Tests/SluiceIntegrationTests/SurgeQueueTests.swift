import Foundation
import SluiceTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `max_per_target` and the surge queue (SPEC §12): the real sluiced between raw sockets /
/// curl and real targets (the Python HTTP backend's `/slow?ms=N` is the slow target).
@Suite(.serialized, .timeLimit(.minutes(10)))
struct SurgeQueueTests {
    /// Metrics text from the daemon's control socket.
    private func metrics(_ d: SluicedProcess) throws -> String {
        try runTool("curl", ["-s", "--unix-socket", d.controlSocket, "http://x/metrics"]).output
    }

    /// The value of the first sample line starting with `prefix` (name and labels).
    private func sample(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// Whether the backend saw a request whose target contains `path`.
    private func saw(_ b: HTTPBackend, _ path: String) throws -> Bool {
        try b.stats().paths.contains { $0.contains(path) }
    }

    private func queueLength(_ d: SluicedProcess, _ group: String = "app") throws -> Int {
        Int(sample(try metrics(d), "sluice_surge_queue_length{group=\"\(group)\"}") ?? -1)
    }

    /// Polls `condition` until it holds or `seconds` pass.
    private func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// Requests run on their own threads; results by label, in completion order.
    final class Runs: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var results: [(label: String, status: Int, retryAfter: String?, at: Date)] = []
        private let group = DispatchGroup()

        func start(_ label: String, port: UInt16, path: String) {
            group.enter()
            Thread { [self] in
                let r = try? get(port, path)
                lock.withLock { results.append((label, r?.status ?? -1, r?.header("retry-after"), Date())) }
                group.leave()
            }.start()
        }

        func wait(seconds: Double) -> Bool { group.wait(timeout: .now() + seconds) == .success }
        var all: [(label: String, status: Int, retryAfter: String?, at: Date)] { lock.withLock { results } }
        var order: [String] { all.map(\.label) }
    }

    private func surgeConfig(port: UInt16, targets: [UInt16], maxPerTarget: Int, queue: String?,
                             workers: Int = 2) -> String {
        var group = ["max_per_target: \(maxPerTarget)"]
        if let queue { group.append("surge_queue: \(queue)") }
        return httpConfig(port: port, groups: [("app", targets)], listener: ["response_timeout: 20s"], group: group,
                          workers: workers)
    }

    /// What most cases start from: one target with `max_per_target: 1`, whose only slot a slow
    /// request (`slowMs`) holds once this returns.
    private struct OneSlotTaken {
        let target: HTTPBackend
        let port: UInt16
        let daemon: SluicedProcess
        let runs = Runs()
    }

    private func oneSlotTaken(queue: String?, slowMs: Int) throws -> OneSlotTaken {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let s = OneSlotTaken(target: a, port: port,
                             daemon: try SluicedProcess(yaml: surgeConfig(port: port, targets: [a.port], maxPerTarget: 1,
                                                                          queue: queue)))
        s.runs.start("slow", port: port, path: "/slow?ms=\(slowMs)")
        #expect(try waitUntil(5) { try saw(a, "/slow") }, "the slow request reached the target")
        return s
    }

    @Test func fullTargetsWithoutAQueueAnswer503AtOnce() throws {
        let s = try oneSlotTaken(queue: nil, slowMs: 1500)
        defer { s.daemon.terminate() }
        let (a, port, _, runs) = (s.target, s.port, s.daemon, s.runs)
        let t0 = Date()
        let r = try get(port, "/second")
        #expect(r.status == 503)
        #expect(r.header("retry-after") == nil, "only a queue (timeout or full) says Retry-After")
        #expect(Date().timeIntervalSince(t0) < 1.0, "answered at once, not after the slow request")
        #expect(runs.wait(seconds: 10))
        #expect(runs.all.first?.status == 200)
        #expect(try get(port, "/third").status == 200, "the slot is free again")
        #expect(try !saw(a, "/second"), "the target never saw the refused request")
    }

    @Test func aGroupWithNoHealthyTargetQueuesInsteadOfFailingOpen() throws {
        let port = try TestSocket.freePort()
        let targetPort = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(
            port: port, groups: [("app", [targetPort])], listener: ["response_timeout: 20s"],
            group: ["surge_queue: { size: 10, timeout: 3s }",
                    "health_check: { protocol: tcp, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 1 }"]))
        defer { d.terminate() }
        let key = "127.0.0.1:\(targetPort)"
        #expect(try waitUntil(10) { try targetStates(d, group: "app")[key] == "unhealthy" })
        // Failing open would send it to the dead target (502 at once); it waits, then 503.
        let t0 = Date()
        let r = try get(port, "/nobody")
        let took = Date().timeIntervalSince(t0)
        #expect(r.status == 503 && r.header("retry-after") == "1", "\(r.status)")
        #expect(took >= 2.9 && took < 8, "answered after \(took) s")
        // A request waiting when the target turns healthy goes to it.
        let runs = Runs()
        runs.start("waiting", port: port, path: "/late")
        #expect(try waitUntil(5) { try queueLength(d) == 1 })
        let a = try HTTPBackend(name: "a", port: targetPort)
        defer { a.stop() }
        #expect(runs.wait(seconds: 10))
        #expect(runs.all.first?.status == 200)
        #expect(try saw(a, "/late") && !saw(a, "/nobody"))
    }

    @Test func queuedRequestsAreServedFirstInFirstOut() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: surgeConfig(port: port, targets: [a.port], maxPerTarget: 1,
                                                     queue: "{ size: 100, timeout: 10s }"))
        defer { d.terminate() }
        let runs = Runs()
        runs.start("first", port: port, path: "/slow?ms=600")
        #expect(try waitUntil(5) { try saw(a, "/slow") })
        for (i, label) in ["q1", "q2", "q3", "q4"].enumerated() {
            runs.start(label, port: port, path: "/slow?ms=50&n=\(label)")
            #expect(try waitUntil(5) { try queueLength(d) == i + 1 }, "\(label) waits in the queue")
        }
        #expect(runs.wait(seconds: 20))
        #expect(runs.all.allSatisfy { $0.status == 200 }, "\(runs.all)")
        #expect(runs.order == ["first", "q1", "q2", "q3", "q4"], "first in, first out: \(runs.order)")
        #expect(try queueLength(d) == 0)
        let m = try metrics(d)
        #expect((sample(m, "sluice_surge_queue_wait_seconds_count{group=\"app\"}") ?? 0) >= 4, "\(m)")
        #expect(sample(m, "sluice_surge_queue_overflow_total{group=\"app\"}") == 0)
    }

    @Test func aBurstIsHeldToTheLimitAndEveryRequestAnswered() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: surgeConfig(port: port, targets: [a.port, b.port], maxPerTarget: 2,
                                                     queue: "{ size: 100, timeout: 15s }"))
        defer { d.terminate() }
        let runs = Runs()
        let t0 = Date()
        for i in 0..<16 { runs.start("r\(i)", port: port, path: "/slow?ms=250") }
        #expect(runs.wait(seconds: 30))
        let elapsed = Date().timeIntervalSince(t0)
        #expect(runs.all.count == 16)
        #expect(runs.all.allSatisfy { $0.status == 200 }, "\(runs.all.map(\.status))")
        // 16 requests, 4 at a time (2 targets × 2), 250 ms each: at least 4 rounds.
        #expect(elapsed >= 0.9, "concurrency was bounded: \(elapsed) s")
        #expect(try queueLength(d) == 0)
    }

    @Test func aRequestWaitingPastTheTimeoutGets503WithRetryAfter() throws {
        let s = try oneSlotTaken(queue: "{ size: 10, timeout: 300ms }", slowMs: 2500)
        defer { s.daemon.terminate() }
        let (a, port, d, runs) = (s.target, s.port, s.daemon, s.runs)
        let t0 = Date()
        let r = try get(port, "/late")
        let waited = Date().timeIntervalSince(t0)
        #expect(r.status == 503)
        #expect(r.header("retry-after") == "1")
        #expect(waited >= 0.25 && waited < 2.0, "waited about the timeout: \(waited)")
        #expect(try queueLength(d) == 0)
        let m = try metrics(d)
        #expect(sample(m, "sluice_errors_total{listener=\"web\",kind=\"surge_queue_timeout\"}") == 1, "\(m)")
        #expect(sample(m, "sluice_requests_total{listener=\"web\",group=\"app\",code=\"503\"}") == 1, "\(m)")
        #expect(runs.wait(seconds: 10))
        #expect(try !saw(a, "/late"))
    }

    @Test func aFullQueueAnswers503AtOnceAndCountsTheOverflow() throws {
        let s = try oneSlotTaken(queue: "{ size: 1, timeout: 10s }", slowMs: 1500)
        defer { s.daemon.terminate() }
        let (_, port, d, runs) = (s.target, s.port, s.daemon, s.runs)
        runs.start("queued", port: port, path: "/queued")
        #expect(try waitUntil(5) { try queueLength(d) == 1 })
        let t0 = Date()
        let r = try get(port, "/overflow")
        #expect(r.status == 503)
        #expect(Date().timeIntervalSince(t0) < 1.0, "a full queue answers at once")
        #expect(r.header("retry-after") == "1")
        #expect(runs.wait(seconds: 10))
        #expect(runs.all.allSatisfy { $0.status == 200 }, "\(runs.all)")
        let m = try metrics(d)
        #expect(sample(m, "sluice_surge_queue_overflow_total{group=\"app\"}") == 1, "\(m)")
        #expect(m.contains("# TYPE sluice_surge_queue_wait_seconds histogram"))
        #expect(m.contains("# TYPE sluice_surge_queue_length gauge"))
    }

    @Test func aClientThatLeavesWhileQueuedIsDropped() throws {
        let s = try oneSlotTaken(queue: "{ size: 10, timeout: 10s }", slowMs: 1200)
        defer { s.daemon.terminate() }
        let (a, port, d, runs) = (s.target, s.port, s.daemon, s.runs)
        let fd = try TestSocket.connect(port: port)
        try TestSocket.sendAll(fd, Array("GET /gone HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(try waitUntil(5) { try queueLength(d) == 1 })
        close(fd)
        #expect(try waitUntil(5) { try queueLength(d) == 0 }, "the queue forgets a client that left")
        #expect(runs.wait(seconds: 10))
        #expect(try get(port, "/after").status == 200)
        #expect(try !saw(a, "/gone"), "the target never saw the dropped request")
    }

    @Test func aReloadRaisingTheLimitDispatchesWaiters() throws {
        let s = try oneSlotTaken(queue: "{ size: 10, timeout: 10s }", slowMs: 4000)
        defer { s.daemon.terminate() }
        let (_, port, d, runs) = (s.target, s.port, s.daemon, s.runs)
        runs.start("waiting", port: port, path: "/waiting")
        #expect(try waitUntil(5) { try queueLength(d) == 1 })
        let text = try String(contentsOfFile: d.configPath, encoding: .utf8)
        try text.replacingOccurrences(of: "max_per_target: 1\n", with: "max_per_target: 2\n")
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        d.send(signal: SIGHUP)
        #expect(waitUntil(5) { runs.all.contains { $0.label == "waiting" } }, "dispatched by the reload, not after the slow one")
        #expect(runs.all.first?.label == "waiting")
        #expect(runs.all.first?.status == 200)
        #expect(runs.wait(seconds: 10))
    }

    @Test func scaleFromZeroARegisteredTargetServesTheWaitingRequests() throws {
        let port = try TestSocket.freePort()
        let yaml = httpConfig(port: port, groups: [("app", [])], listener: ["response_timeout: 20s"],
                              group: ["surge_queue: { size: 10, timeout: 15s }"])
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let runs = Runs()
        for i in 0..<3 { runs.start("w\(i)", port: port, path: "/w\(i)") }
        #expect(try waitUntil(5) { try queueLength(d) == 3 }, "requests wait while the group has no target")
        let a = try HTTPBackend(name: "a")
        let reg = try ctl(d, ["targets", "register", "app", "127.0.0.1:\(a.port)"])
        #expect(reg.status == 0, "\(reg.output)")
        #expect(runs.wait(seconds: 15))
        #expect(runs.all.count == 3)
        #expect(runs.all.allSatisfy { $0.status == 200 }, "\(runs.all)")
        #expect(try queueLength(d) == 0)
    }

    @Test func anHTTP2StreamWaitsInTheQueue() throws {
        let s = try oneSlotTaken(queue: "{ size: 10, timeout: 10s }", slowMs: 1500)
        defer { s.daemon.terminate() }
        let (_, port, d, runs) = (s.target, s.port, s.daemon, s.runs)
        let box = SendBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            let r = try? runTool("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                                          "http://127.0.0.1:\(port)/h2"])
            box.set(r?.output ?? "failed")
            done.signal()
        }.start()
        #expect(try waitUntil(5) { try queueLength(d) == 1 }, "the HTTP/2 stream waits")
        #expect(done.wait(timeout: .now() + 15) == .success)
        #expect(box.value == "2 200", "\(box.value ?? "")")
        #expect(runs.wait(seconds: 10))
    }

    @Test func tcpConnectionsWaitThenFlowAndTimeOutClosed() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let yaml = tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)],
                             groupExtra: ["health_check: off", "max_per_target: 1", "surge_queue: { size: 10, timeout: 1500ms }"])
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let first = try TestSocket.connect(port: port)
        #expect(try echoOnce(first, "one") == "one")
        // The second connection waits: its bytes stay unread until the first closes.
        let second = try TestSocket.connect(port: port)
        try TestSocket.sendAll(second, Array("two".utf8))
        #expect(try waitUntil(5) { try queueLength(d, "pool") == 1 })
        #expect(echo.acceptedCount == 1, "the target sees one connection while the other waits")
        close(first)
        TestSocket.setTimeouts(second, seconds: 5)
        #expect(try TestSocket.receive(second, count: 3) == Array("two".utf8), "it flows once the slot is free")
        #expect(try queueLength(d, "pool") == 0)
        // While `second` holds the slot, a third (which sent bytes) waits past the timeout and
        // is closed: a FIN, not a reset, though its bytes were never read.
        let third = try TestSocket.connect(port: port)
        let t0 = Date()
        try TestSocket.sendAll(third, Array("three".utf8))
        #expect(try waitUntil(5) { try queueLength(d, "pool") == 1 })
        TestSocket.setTimeouts(third, seconds: 5)
        var byte: UInt8 = 0
        let n = recv(third, &byte, 1, 0)
        #expect(n == 0, "closed at the queue timeout with a FIN: recv \(n), errno \(n < 0 ? errno : 0)")
        let waited = Date().timeIntervalSince(t0)
        #expect(waited >= 1.0 && waited < 5, "\(waited)")
        close(third)
        close(second)
        let m = try metrics(d)
        #expect(sample(m, "sluice_errors_total{listener=\"front\",kind=\"surge_queue_timeout\"}") == 1, "\(m)")
        #expect(echo.acceptedCount == 2)
    }

    private func echoOnce(_ fd: Int32, _ text: String) throws -> String {
        TestSocket.setTimeouts(fd, seconds: 5)
        try TestSocket.sendAll(fd, Array(text.utf8))
        return String(decoding: try TestSocket.receive(fd, count: text.utf8.count), as: UTF8.self)
    }

    @Test func udpGroupsRefuseTheKeys() throws {
        let yaml = """
            listeners:
              - { name: dns, protocol: udp, bind: "127.0.0.1:0", default: { forward: d } }
            target_groups:
              - name: d
                protocol: udp
                max_per_target: 3
                targets: []
            """
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-surge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try SluicedProcess.run(["--check", "--config", path])
        #expect(r.status != 0)
        #expect(r.output.contains("max_per_target is not supported on udp groups"), "\(r.output)")
    }
}
