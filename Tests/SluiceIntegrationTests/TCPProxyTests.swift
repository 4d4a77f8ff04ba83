import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real `sluiced` binary between real TCP clients and real TCP targets on loopback.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct TCPProxyTests {
    @Test func twentyMegabytesBothWaysArriveIntact() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)]))
        defer { d.terminate() }
        let payload = randomPayload(count: 20 * 1024 * 1024, seed: 42)
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        let echoed = try echoRoundTrip(fd, payload)
        #expect(echoed.count == payload.count)
        #expect(fnv1a(echoed) == fnv1a(payload))
    }

    @Test func copyModeMovesTheSameBytes() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)]),
                                   arguments: ["--no-splice"])
        defer { d.terminate() }
        let payload = randomPayload(count: 4 * 1024 * 1024, seed: 7)
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        #expect(fnv1a(try echoRoundTrip(fd, payload)) == fnv1a(payload))
    }

    @Test func halfCloseIsPassedOnBothWays() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("before-fin".utf8))
        TestSocket.shutdownWrite(fd)
        // The target only echoes the rest and sends its own FIN after it saw ours: getting
        // the bytes and then EOF proves the FIN crossed the proxy in both directions.
        let back = try TestSocket.receiveAll(fd)
        #expect(String(decoding: back, as: UTF8.self) == "before-fin")
    }

    /// Every L4 connection passes a preamble phase (none for a plain listener) before its
    /// target connect: bytes and the FIN the client sends at once must wait in the socket,
    /// not be read (and lost) by the preamble.
    @Test func bytesSentBeforeTheTargetConnectsPassThePreamble() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)]))
        defer { d.terminate() }
        for seed in 1...5 {
            let fd = try TestSocket.connect(port: port)
            defer { close(fd) }
            let payload = randomPayload(count: 32 * 1024, seed: UInt64(seed))
            try TestSocket.sendAll(fd, payload)
            TestSocket.shutdownWrite(fd)
            #expect(fnv1a(try TestSocket.receiveAll(fd)) == fnv1a(payload))
        }
    }

    @Test func twoHundredConcurrentConnections() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)],
                                                   workers: 2))
        defer { d.terminate() }
        let failures = SendBox()
        let okCount = Counter()
        let group = DispatchGroup()
        for i in 0..<200 {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let fd = try TestSocket.connect(port: port)
                    defer { close(fd) }
                    let payload = randomPayload(count: 64 * 1024, seed: UInt64(i + 1))
                    if fnv1a(try echoRoundTrip(fd, payload)) == fnv1a(payload) { okCount.add() } else {
                        failures.set("connection \(i): payload differs")
                    }
                } catch {
                    failures.set("connection \(i): \(error)")
                }
            }.start()
        }
        #expect(group.wait(timeout: .now() + 90) == .success)
        #expect(failures.value == nil)
        #expect(okCount.value == 200)
        #expect(echo.acceptedCount == 200)
    }

    @Test func deadTargetIsSkipped() throws {
        let live = try TCPBackend(mode: .name("live"))
        let deadPort = try TestSocket.freePort()  // nothing listens here: connects are refused
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)",
                                                   targets: [("127.0.0.1:\(deadPort)", 1), ("127.0.0.1:\(live.port)", 1)]))
        defer { d.terminate() }
        for _ in 0..<10 {
            #expect(try reachedBackend(port: port) == "live")
        }
    }

    @Test func connectTimeoutMovesOnToTheNextTarget() throws {
        // A listener whose accept queue is full drops SYNs, so a connect to it never completes.
        let (blackhole, blackholePort) = try TestSocket.listen(backlog: 0)
        defer { close(blackhole) }
        var fillers: [Int32] = []
        defer { fillers.forEach { close($0) } }
        for _ in 0..<3 {
            if let fd = try? TestSocket.connect(port: blackholePort, timeoutSeconds: 1) { fillers.append(fd) }
        }
        let live = try TCPBackend(mode: .name("live"))
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(
            listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(blackholePort)", 1), ("127.0.0.1:\(live.port)", 1)],
            listenerExtra: ["connect_timeout: 300ms"]))
        defer { d.terminate() }
        for _ in 0..<4 {
            #expect(try reachedBackend(port: port) == "live")
        }
    }

    @Test func roundRobinSharesFollowWeights() throws {
        let a = try TCPBackend(mode: .name("a"))
        let b = try TCPBackend(mode: .name("b"))
        let c = try TCPBackend(mode: .name("c"))
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)",
                                                   targets: [("127.0.0.1:\(a.port)", 3), ("127.0.0.1:\(b.port)", 1),
                                                             ("127.0.0.1:\(c.port)", 0)]))
        defer { d.terminate() }
        var counts: [String: Int] = [:]
        var sequence = ""
        for _ in 0..<40 {
            let name = try reachedBackend(port: port)
            counts[name, default: 0] += 1
            sequence += name
        }
        #expect(counts["a"] == 30)
        #expect(counts["b"] == 10)
        #expect(counts["c"] == nil, "weight 0 gets no new connections")
        #expect(!sequence.contains("bb"), "smooth round robin interleaves: \(sequence)")
    }

    @Test func targetsTakeTurnsAcrossWorkers() throws {
        let a = try TCPBackend(mode: .name("a"))
        let b = try TCPBackend(mode: .name("b"))
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)",
                                                   targets: [("127.0.0.1:\(a.port)", 1), ("127.0.0.1:\(b.port)", 1)],
                                                   workers: 2))
        defer { d.terminate() }
        var sequence = ""
        for _ in 0..<20 { sequence += try reachedBackend(port: port) }
        #expect(sequence == String(repeating: "ab", count: 10) || sequence == String(repeating: "ba", count: 10),
                "round robin is one rotation for the whole process: \(sequence)")
    }

    @Test func leastOutstandingFillsTheLessLoadedTarget() throws {
        let a = try TCPBackend(mode: .hold)
        let b = try TCPBackend(mode: .hold)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)",
                                                   targets: [("127.0.0.1:\(a.port)", 1), ("127.0.0.1:\(b.port)", 1)],
                                                   algorithm: "least_outstanding"))
        defer { d.terminate() }
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<10 { held.append(try TestSocket.connect(port: port)) }
        try waitUntil("10 connections reach the targets") { a.acceptedCount + b.acceptedCount == 10 }
        #expect(a.acceptedCount == 5 && b.acceptedCount == 5)
    }

    /// random_two balances tcp groups by connections in flight, as it does http requests.
    @Test func randomTwoBalancesOpenConnections() throws {
        let a = try TCPBackend(mode: .hold)
        let b = try TCPBackend(mode: .hold)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)",
                                                   targets: [("127.0.0.1:\(a.port)", 1), ("127.0.0.1:\(b.port)", 1)],
                                                   algorithm: "random_two"))
        defer { d.terminate() }
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<20 { held.append(try TestSocket.connect(port: port)) }
        try waitUntil("20 connections reach the targets") { a.acceptedCount + b.acceptedCount == 20 }
        #expect(abs(a.acceptedCount - b.acceptedCount) <= 2, "a \(a.acceptedCount), b \(b.acceptedCount)")
    }

    @Test func flowHashSpreadsConnections() throws {
        let backends = try (0..<3).map { try TCPBackend(mode: .name("t\($0)")) }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)",
                                                   targets: backends.map { ("127.0.0.1:\($0.port)", 1) },
                                                   algorithm: "flow_hash"))
        defer { d.terminate() }
        var seen = Set<String>()
        for _ in 0..<60 { seen.insert(try reachedBackend(port: port)) }
        #expect(seen == ["t0", "t1", "t2"])
    }

    @Test func idleTimeoutClosesBothSides() throws {
        let hold = try TCPBackend(mode: .hold)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(hold.port)", 1)],
                                                   listenerExtra: ["idle_timeout: 400ms"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        let start = Date()
        #expect(TestSocket.waitForClose(fd), "the proxy closes an idle connection")
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed >= 0.35 && elapsed < 5, "closed after \(elapsed) s")
        try waitUntil("the target side is closed too") { hold.openCount == 0 }
    }

    @Test func activeConnectionOutlivesIdleTimeout() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)],
                                                   listenerExtra: ["idle_timeout: 500ms"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        // Ten round trips 200 ms apart span 2 s, four idle timeouts; each resets the clock.
        for i in 0..<10 {
            try TestSocket.sendAll(fd, [UInt8(i)])
            #expect(try TestSocket.receive(fd, count: 1) == [UInt8(i)])
            usleep(200_000)  // the quiet gap under test, not synchronisation
        }
    }

    @Test func maxConnectionsMakesAcceptWait() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)],
                                                   nodeExtra: ["max_connections: 2"]))
        defer { d.terminate() }
        let first = try TestSocket.connect(port: port)
        let second = try TestSocket.connect(port: port)
        defer { close(second) }
        for fd in [first, second] {
            try TestSocket.sendAll(fd, [1])
            #expect(try TestSocket.receive(fd, count: 1) == [1])
        }
        let third = try TestSocket.connect(port: port, timeoutSeconds: 1)
        defer { close(third) }
        try TestSocket.sendAll(third, [3])
        #expect(throws: TestSocket.Failure.self, "a third connection waits in the backlog") {
            _ = try TestSocket.receive(third, count: 1)
        }
        close(first)
        TestSocket.setTimeouts(third, seconds: 10)
        #expect(try TestSocket.receive(third, count: 1) == [3], "served once a slot frees up")
    }

    @Test func ipv6ListenerAndTarget() throws {
        let echo = try TCPBackend(mode: .echo, host: "::1")
        let (probe, port) = try TestSocket.listen(host: "::1")
        close(probe)
        let d = try SluicedProcess(yaml: tcpConfig(listen: "[::1]:\(port)", targets: [("[::1]:\(echo.port)", 1)]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port, host: "::1")
        defer { close(fd) }
        let payload = randomPayload(count: 256 * 1024, seed: 6)
        #expect(fnv1a(try echoRoundTrip(fd, payload)) == fnv1a(payload))
    }
}

final class Counter: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// Polls `condition` for up to 10 s: for state another process reaches asynchronously
/// (a backend's accept count) that has no event to wait on.
func waitUntil(_ what: String, _ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(10)
    while !condition() {
        if Date() > deadline { throw TestSocket.Failure("timed out waiting until \(what)") }
        usleep(10_000)
    }
}
