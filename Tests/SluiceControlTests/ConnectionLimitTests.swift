#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import SluiceControl

/// Idle and slow clients against the bounds of `ConnectionLimits`: threads and descriptors stay bounded,
/// slow clients are cut at the request timeout, and a normal request still gets its answer.
@Suite("Connection limits", .serialized)
struct ConnectionLimitTests {
    static let timeout = Duration.seconds(1)

    /// Seconds since `start` (monotonic).
    static func elapsed(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Whether the server closes `client` (EOF or reset) within `seconds`, reading and dropping any bytes.
    static func closedByServer(_ client: RawClient, within seconds: Int) -> Bool {
        ControlSocket.setReceiveTimeout(client.fd, seconds: seconds)
        while true {
            guard let bytes = try? ControlSocket.read(client.fd) else {
                return errno == ECONNRESET
            }
            if bytes.isEmpty { return true }
        }
    }

    @Test func metricsSlowlorisCannotStarveAScrape() throws {
        let limits = ConnectionLimits(maxConnections: 4, maxStreams: 0, requestTimeout: Self.timeout)
        let server = MetricsServer(address: "127.0.0.1", port: 0, backend: FakeBackend(), limits: limits)
        try server.start()
        defer { server.stop() }
        // N+1 idle connections and as many that send a partial head: the first N take every slot.
        var idle: [RawClient] = []
        for i in 0..<(2 * (limits.maxConnections + 1)) {
            let client = try RawClient(tcpPort: server.port)
            if i % 2 == 1 { try ControlSocket.writeAll(client.fd, Array("GET /metrics HTTP/1.1\r\nHost".utf8)) }
            idle.append(client)
        }
        let start = ContinuousClock.now
        let scrape = try RawClient(tcpPort: server.port).request("GET", "/metrics")
        let took = Self.elapsed(since: start)
        #expect(scrape.status == 200 && scrape.text.contains("sluice_up 1"))
        // Each slot is held at most one request timeout; the scrape waits behind at most two rounds of them.
        #expect(took < 3 * 1.0 + 1.0, "scrape took \(took) s")
        for client in idle { #expect(Self.closedByServer(client, within: 5)) }
        let counts = server.slots.counts
        #expect(counts.peakRequest <= limits.maxConnections)
        #expect(counts.peakRequest == limits.maxConnections)  // the idle ones did fill every slot
    }

    @Test func metricsTrickleIsCutAtTheRequestTimeout() throws {
        let limits = ConnectionLimits(maxConnections: 2, maxStreams: 0, requestTimeout: Self.timeout)
        let server = MetricsServer(address: "127.0.0.1", port: 0, backend: FakeBackend(), limits: limits)
        try server.start()
        defer { server.stop() }
        let client = try RawClient(tcpPort: server.port)
        let start = ContinuousClock.now
        // One byte every 100 ms: each read is quick, so only a deadline on the whole request stops it.
        var cut = false
        for byte in Array("GET /metrics HTTP/1.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 100) {
            do throws(ControlSocketError) {
                try ControlSocket.writeAll(client.fd, [byte])
            } catch {
                cut = true
                break
            }
            if ControlSocket.peerClosed(client.fd) {
                cut = true
                break
            }
            Thread.sleep(forTimeInterval: 0.1)  // the trickle itself, not synchronisation
        }
        let took = Self.elapsed(since: start)
        #expect(cut, "a trickling client was never disconnected")
        #expect(took < 3.0, "cut after \(took) s")
    }

    @Test func manyIdleMetricsConnectionsHoldAtMostTheCap() throws {
        let limits = ConnectionLimits(maxConnections: 3, maxStreams: 0, requestTimeout: .seconds(30))
        let server = MetricsServer(address: "127.0.0.1", port: 0, backend: FakeBackend(), limits: limits)
        try server.start()
        defer { server.stop() }
        // Fewer than the listen backlog, so every connect succeeds at once.
        let idle = try (0..<40).map { _ in try RawClient(tcpPort: server.port) }
        // Until the cap is reached, accepting takes time; wait for it (bounded), then check it holds.
        let start = ContinuousClock.now
        while server.slots.counts.request < limits.maxConnections && Self.elapsed(since: start) < 5 {
            _ = ControlSocket.waitReadable(idle[0].fd, milliseconds: 10)
        }
        #expect(server.slots.counts.request == limits.maxConnections)
        // More time for a thread-per-connection server to take the rest: it must not.
        _ = ControlSocket.waitReadable(idle[0].fd, milliseconds: 300)
        #expect(server.slots.counts.peakRequest == limits.maxConnections)
        withExtendedLifetime(idle) {}
    }

    @Test func controlIdleClientIsDisconnectedAndOthersAreServed() throws {
        let limits = ConnectionLimits(maxConnections: 2, maxStreams: 1, requestTimeout: Self.timeout)
        let h = try Harness(limits: limits)
        defer { h.finish() }
        let idle = try (0...limits.maxConnections).map { _ in try h.client() }
        let start = ContinuousClock.now
        let answer = try h.client().request("GET", "/v1/status")
        #expect(answer.status == 200)
        #expect(Self.elapsed(since: start) < 4.0)
        for client in idle { #expect(Self.closedByServer(client, within: 5)) }
        #expect(h.server.slots.counts.peakRequest <= limits.maxConnections)
    }

    @Test func controlStreamsHaveTheirOwnAllowance() throws {
        let limits = ConnectionLimits(maxConnections: 1, maxStreams: 1, requestTimeout: .seconds(5))
        let h = try Harness(limits: limits)
        defer { h.finish() }
        let stream = try h.client()
        try stream.send("GET", "/v1/events")
        let (status, headers) = try stream.readHead()
        #expect(status == 200 && headers["transfer-encoding"] == "chunked")
        // The stream holds a stream slot, not the only request slot: ordinary requests still go through.
        for _ in 0..<3 {
            #expect(try h.client().request("GET", "/v1/status").status == 200)
        }
        // A second long-lived request finds the stream allowance full: 503, at once.
        let second = try h.client().request("GET", "/v1/events")
        #expect(second.status == 503)
        #expect(second.text.contains("\"busy\""))
        let wait = try h.client().request("DELETE", "/v1/target-groups/web/targets/10.0.0.1:8080?wait=true")
        #expect(wait.status == 503)
        #expect(h.server.slots.counts.stream == 1)
        #expect(h.server.slots.counts.peakStream == 1)
        // The stream still works.
        h.events.publish(ControlEvent(type: "reload", message: "m"))
        let chunk = try #require(try stream.readChunk())
        #expect(String(decoding: chunk, as: UTF8.self).contains("\"reload\""))
    }

    @Test func longLivedRequestsAreRecognised() {
        #expect(ControlRouter.isLongLived(HTTPRequest(method: "GET", target: "/v1/events")))
        #expect(ControlRouter.isLongLived(HTTPRequest(method: "GET", target: "/v1/events?group=web")))
        #expect(ControlRouter.isLongLived(HTTPRequest(method: "GET", target: "/v1/%65vents")))
        #expect(ControlRouter.isLongLived(HTTPRequest(method: "DELETE", target: "/v1/target-groups/g/targets/a:1?wait=true")))
        #expect(ControlRouter.isLongLived(HTTPRequest(method: "DELETE", target: "/v1/target-groups/g/targets/a:1?wait")))
        #expect(!ControlRouter.isLongLived(HTTPRequest(method: "DELETE", target: "/v1/target-groups/g/targets/a:1")))
        #expect(!ControlRouter.isLongLived(HTTPRequest(method: "DELETE", target: "/v1/target-groups/g/targets/a:1?wait=no")))
        #expect(!ControlRouter.isLongLived(HTTPRequest(method: "DELETE", target: "/v1/target-groups/g/targets/a:1?wait=zz")))
        #expect(!ControlRouter.isLongLived(HTTPRequest(method: "POST", target: "/v1/events")))
        #expect(!ControlRouter.isLongLived(HTTPRequest(method: "GET", target: "/v1/status")))
        #expect(!ControlRouter.isLongLived(HTTPRequest(method: "GET", target: "/v1/%zz")))
    }

    @Test func limitsConvertWithoutTrapping() {
        #expect(ConnectionLimits(maxConnections: 1, maxStreams: 0, requestTimeout: .milliseconds(1500)).requestTimeoutMilliseconds == 1500)
        #expect(ConnectionLimits(maxConnections: 1, maxStreams: 0, requestTimeout: .nanoseconds(1)).requestTimeoutMilliseconds == 1)
        #expect(ConnectionLimits(maxConnections: 1, maxStreams: 0, requestTimeout: .seconds(Int64.max)).requestTimeoutMilliseconds
            == Int(Int32.max) * 1000)
    }
}
