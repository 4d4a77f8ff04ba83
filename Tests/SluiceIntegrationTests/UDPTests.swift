import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The real `sluiced` between real UDP clients and real UDP echo targets on loopback: flows
/// pinned by `flow_hash`, expiry, the flow-table bound, datagram sizes, ordering, IPv6,
/// wildcard binds, tcp_udp and health-checked UDP groups.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct UDPTests {
    /// One client port always reaches the same target; many ports spread over the targets,
    /// each exactly where the Maglev table sends its hash (with one worker or two: the kernel
    /// gives a client address to one worker, and every worker has the same table).
    @Test(arguments: [1, 2]) func flowsArePinnedWhereMaglevSendsThem(workers: Int) throws {
        let a = try udpEcho("a")
        let b = try udpEcho("b")
        let port = try freeUDPPort()
        let targets = ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"]
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: targets, workers: workers))
        defer { d.terminate() }
        var seen: [String: Int] = [:]
        var clients: [UDPClient] = []  // all kept open: a closed client's port could come back as another's
        for _ in 0..<40 {
            let c = try UDPClient(port: port)
            clients.append(c)
            let first = try c.target()
            for i in 0..<3 { #expect(try c.target("again \(i)") == first, "one client port, one target") }
            let expected = maglevTarget(clientPort: c.localPort, listener: "dns", targets: targets)
            #expect(expected.map { ["a", "b"][$0] } == first, "client port \(c.localPort)")
            seen[first, default: 0] += 1
        }
        #expect(seen["a", default: 0] > 5 && seen["b", default: 0] > 5, "\(seen)")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_connections_total{listener=\"dns\"}") == 40, "\(m)")
        #expect(metricValue(m, "sluice_udp_datagrams_total{listener=\"dns\",direction=\"in\"}") == 160, "\(m)")
        #expect(metricValue(m, "sluice_udp_datagrams_total{listener=\"dns\",direction=\"out\"}") == 160, "\(m)")
    }

    /// A registered target takes no flow that exists (they stay pinned) and new flows where
    /// Maglev sends them; a deregistered one gives up only its own flows, which move where
    /// the table without it sends them.
    @Test func targetChangesMoveOnlyTheirOwnFlows() throws {
        let a = try udpEcho("a")
        let b = try udpEcho("b")
        let c = try udpEcho("c")
        let port = try freeUDPPort()
        let two = ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"]
        let three = two + ["127.0.0.1:\(c.port)"]
        let names = ["a", "b", "c"]
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: two,
                                                   groupExtra: ["health_check: off", "deregistration_delay: 0s"]))
        defer { d.terminate() }
        let clients = try (0..<30).map { _ in try UDPClient(port: port) }
        var pinned: [String] = []
        for cl in clients { pinned.append(try cl.target()) }

        let reg = try ctl(d, ["targets", "register", "dns", three[2]])
        #expect(reg.status == 0, "\(reg.output)")
        // Every client stays open to the end: a closed one's port could come back as a
        // newcomer's and find the old flow.
        var kept: [UDPClient] = []
        // The new target is in use once a new client can reach it; wait for that by polling new clients.
        try waitFor("the registration is applied", seconds: 10) {
            let probe = try UDPClient(port: port)
            kept.append(probe)
            let expected = maglevTarget(clientPort: probe.localPort, listener: "dns", targets: three).map { names[$0] }
            return try probe.target() == expected
        }
        for (i, cl) in clients.enumerated() { #expect(try cl.target() == pinned[i], "existing flows stay pinned") }
        var newcomers: [String: Int] = [:]
        for _ in 0..<30 {
            let cl = try UDPClient(port: port)
            kept.append(cl)
            let got = try cl.target()
            #expect(maglevTarget(clientPort: cl.localPort, listener: "dns", targets: three).map { names[$0] } == got)
            newcomers[got, default: 0] += 1
        }
        #expect(newcomers["c", default: 0] > 0, "\(newcomers)")

        let dereg = try ctl(d, ["targets", "deregister", "dns", two[0]])
        #expect(dereg.status == 0, "\(dereg.output)")
        let withoutA = [two[1], three[2]]
        let onA = try #require(pinned.firstIndex(of: "a"))
        try waitFor("the deregistration is applied", seconds: 10) { try clients[onA].target() != "a" }
        for (i, cl) in clients.enumerated() {
            let got = try cl.target()
            if pinned[i] == "a" {
                let expected = maglevTarget(clientPort: cl.localPort, listener: "dns", targets: withoutA)
                    .map { ["b", "c"][$0] }
                #expect(got == expected, "a's flows move where the table without a sends them")
            } else {
                #expect(got == pinned[i], "flows of other targets stay")
            }
        }
    }

    /// `idle_timeout: 1s`: a flow silent for longer is gone, and the client's next datagram
    /// opens a new one (a second connection in the metrics).
    @Test func idleFlowsExpire() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:\(a.port)"],
                                                   listenerExtra: ["idle_timeout: 1s"]))
        defer { d.terminate() }
        let c = try UDPClient(port: port)
        #expect(try c.target() == "a")
        #expect(try c.target() == "a")
        var m = try metricsText(d)
        #expect(metricValue(m, "sluice_connections_total{listener=\"dns\"}") == 1)
        #expect(metricValue(m, "sluice_connections_active{listener=\"dns\"}") == 1)
        let sent = Date()
        try waitFor("the flow expired", seconds: 5) {
            metricValue(try metricsText(d), "sluice_connections_active{listener=\"dns\"}") == 0
        }
        #expect(Date().timeIntervalSince(sent) > 0.9, "not before the idle timeout")
        #expect(try c.target() == "a")
        m = try metricsText(d)
        #expect(metricValue(m, "sluice_connections_total{listener=\"dns\"}") == 2, "\(m)")
        #expect(metricValue(m, "sluice_connections_active{listener=\"dns\"}") == 1, "\(m)")
    }

    /// `max_flows: 2` with one worker: a third client is dropped and counted, and logged once;
    /// the first two still pass.
    @Test func aFullFlowTableDropsNewClients() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:\(a.port)"],
                                                   listenerExtra: ["max_flows: 2"]))
        defer { d.terminate() }
        let one = try UDPClient(port: port)
        let two = try UDPClient(port: port)
        #expect(try one.target() == "a")
        #expect(try two.target() == "a")
        let three = try UDPClient(port: port, timeoutMillis: 300)
        #expect(throws: (any Error).self) { try three.target() }
        #expect(throws: (any Error).self) { try three.target() }
        #expect(try one.target() == "a")
        let m = try metricsText(d)
        #expect(metricValue(m, "sluice_errors_total{listener=\"dns\",kind=\"udp_flow_table_full\"}") == 2, "\(m)")
        #expect(metricValue(m, "sluice_connections_total{listener=\"dns\"}") == 2, "\(m)")
        try waitFor("the full table is logged", seconds: 15) { d.log.contains("udp flow table full") }
        #expect(d.log.components(separatedBy: "udp flow table full").count == 2, "one line per interval:\n\(d.log)")
    }

    /// Datagrams of 0, 1, 1,400 and 65,507 bytes (the IPv4 maximum) cross intact both ways.
    @Test func datagramsOfEverySizeArriveIntact() throws {
        let a = try udpEcho("-")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:\(a.port)"]))
        defer { d.terminate() }
        let c = try UDPClient(port: port)
        for size in [1, 1400, 65_507, 0, 9000] {
            let payload = randomPayload(count: size, seed: UInt64(size + 1))
            let back = try c.exchange(payload)
            #expect(back.count == size && back == payload, "\(size) bytes")
        }
    }

    /// 1,000 datagrams of one flow, at most 32 in flight, come back in the order sent.
    @Test func oneFlowKeepsItsOrder() throws {
        let a = try udpEcho("-")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:\(a.port)"]))
        defer { d.terminate() }
        let c = try UDPClient(port: port)
        var next = 0
        var received: [Int] = []
        while received.count < 1000 {
            while next < 1000 && next - received.count < 32 {
                var bytes = withUnsafeBytes(of: UInt32(next).bigEndian) { Array($0) }
                bytes += [UInt8](repeating: 0x5A, count: 200)
                try c.send(bytes)
                next += 1
            }
            let back = try c.receive()
            received.append(Int(back.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }))
        }
        #expect(received == Array(0..<1000))
    }

    /// IPv6 end to end, up to the largest IPv6 UDP payload (65,527 bytes).
    @Test func ipv6FlowsWork() throws {
        let a = try udpEcho("-", host: "::1")
        let port = try freeUDPPort(host: "::1")
        let d = try SluicedProcess(yaml: udpConfig(bind: "[::1]:\(port)", targets: ["[::1]:\(a.port)"]))
        defer { d.terminate() }
        let c = try UDPClient(host: "::1", port: port)
        for size in [5, 1400, 65_527] {
            let payload = randomPayload(count: size, seed: UInt64(size))
            #expect(try c.exchange(payload) == payload, "\(size) bytes")
        }
    }

    /// A target whose port is closed: the kernel's "port unreachable" drops datagrams (counted
    /// as `udp_dropped`), never the listener; flows on a live target keep working.
    @Test func portUnreachableDropsDatagramsNotTheListener() throws {
        let a = try udpEcho("a")
        let deadPort = try freeUDPPort()  // nothing listens there
        let port = try freeUDPPort()
        let targets = ["127.0.0.1:\(a.port)", "127.0.0.1:\(deadPort)"]
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: targets))
        defer { d.terminate() }
        /// A new client whose flow Maglev sends to `targets[index]`.
        func client(to index: Int) throws -> UDPClient {
            while true {
                let c = try UDPClient(port: port, timeoutMillis: 2000)
                if maglevTarget(clientPort: c.localPort, listener: "dns", targets: targets) == index { return c }
            }
        }
        let dead = try client(to: 1)
        let live = try client(to: 0)
        #expect(try live.target() == "a")
        try waitFor("a datagram to the closed port is dropped and counted", seconds: 10) {
            try dead.send(Array("lost".utf8))
            return metricValue(try metricsText(d), "sluice_errors_total{listener=\"dns\",kind=\"udp_dropped\"}") >= 1
        }
        #expect(try live.target() == "a")
        #expect(try client(to: 0).target() == "a", "the listener still serves new clients")
        #expect(d.isRunning)
    }

    /// A UDP address another process holds is refused at start, naming listener and address.
    @Test func udpAddressInUseIsReported() throws {
        let port = try freeUDPPort()
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let holder = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(holder) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0)
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:9"]),
                                   waitForReady: false)
        defer { d.terminate() }
        #expect(d.waitForExit(seconds: 10) == 1)
        #expect(d.log.contains("listener dns: address 127.0.0.1:\(port) is already in use"), "\(d.log)")
    }

    /// A listener bound to 0.0.0.0 answers from the address the client wrote to: a client
    /// connected to 127.0.0.2 only accepts datagrams from 127.0.0.2.
    @Test func wildcardListenerAnswersFromTheAddressWrittenTo() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "0.0.0.0:\(port)", targets: ["127.0.0.1:\(a.port)"]))
        defer { d.terminate() }
        for host in ["127.0.0.2", "127.0.0.1", "127.0.0.3"] {
            let c = try UDPClient(host: host, port: port)
            #expect(try c.target() == "a", "\(host)")
        }
    }

    /// One client port writing to two addresses of a wildcard listener makes two flows, each
    /// answered from the address it wrote to.
    @Test func oneClientPortTwoLocalAddressesTwoFlows() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "0.0.0.0:\(port)", targets: ["127.0.0.1:\(a.port)"]))
        defer { d.terminate() }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        for (i, host) in [UInt32(0x7F00_0002), 0x7F00_0003, 0x7F00_0002].enumerated() {
            var to = sockaddr_in()
            to.sin_family = sa_family_t(AF_INET)
            to.sin_port = port.bigEndian
            to.sin_addr.s_addr = host.bigEndian
            let sent = withUnsafePointer(to: &to) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(sent == 1)
            var buf = [UInt8](repeating: 0, count: 100)
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &len) }
            }
            #expect(n == 3, "answer \(i)")
            #expect(UInt32(bigEndian: from.sin_addr.s_addr) == host && UInt16(bigEndian: from.sin_port) == port,
                    "answer \(i) comes from the address written to")
        }
        #expect(metricValue(try metricsText(d), "sluice_connections_total{listener=\"dns\"}") == 2)
    }

    /// tcp_udp: TCP connections and UDP flows on one port reach the same group (a target that
    /// listens on both).
    @Test func tcpAndUDPOnOnePort() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: ["127.0.0.1:\(a.port)"],
                                                   protocol: "tcp_udp"))
        defer { d.terminate() }
        let u = try UDPClient(port: port)
        #expect(try u.target() == "a")
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("over tcp".utf8))
        TestSocket.shutdownWrite(fd)
        #expect(String(decoding: try TestSocket.receiveAll(fd), as: UTF8.self) == "a\nover tcp")
        #expect(d.log.contains("protocol=tcp_udp"), "\(d.log)")
    }

    /// A udp group is health-checked over TCP on the traffic port (the default): a target
    /// whose TCP side is down turns unhealthy and gets no new flows.
    @Test func healthCheckedGroupSkipsATargetWhoseTCPSideIsDown() throws {
        let a = try udpEcho("a")
        let b = try udpEcho("b", tcp: false)
        let port = try freeUDPPort()
        let targets = ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"]
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: targets, groupExtra: [
            "health_check: { interval: 200ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1 }",
        ]))
        defer { d.terminate() }
        try waitFor("b is unhealthy and a healthy", seconds: 10) {
            let s = try targetStates(d, group: "dns")
            return s[targets[0]] == "healthy" && s[targets[1]] == "unhealthy"
        }
        for _ in 0..<20 {
            let c = try UDPClient(port: port)
            #expect(try c.target() == "a")
        }
    }

    /// A reload that keeps the udp listener keeps its sockets and its flows (same target, no
    /// new connection); one that turns it into tcp_udp adds TCP on the same port; one that
    /// removes it closes its flows and frees the port.
    @Test func reloadsKeepFlowsAndSockets() throws {
        let a = try udpEcho("a")
        let b = try udpEcho("b")
        let port = try freeUDPPort()
        let targets = ["127.0.0.1:\(a.port)", "127.0.0.1:\(b.port)"]
        let d = try SluicedProcess(yaml: udpConfig(bind: "127.0.0.1:\(port)", targets: targets))
        defer { d.terminate() }
        let clients = try (0..<8).map { _ in try UDPClient(port: port) }
        let pinned = try clients.map { try $0.target() }
        try udpConfig(bind: "127.0.0.1:\(port)", targets: targets, listenerExtra: ["max_flows: 100", "idle_timeout: 30s"])
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        #expect(try ctl(d, ["reload"]).status == 0)
        for (i, c) in clients.enumerated() { #expect(try c.target() == pinned[i]) }
        try udpConfig(bind: "127.0.0.1:\(port)", targets: targets, protocol: "tcp_udp")
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        let r = try ctl(d, ["reload"])
        #expect(r.status == 0, "\(r.output)")
        for (i, c) in clients.enumerated() { #expect(try c.target() == pinned[i], "kept across the protocol change") }
        let fd = try TestSocket.connect(port: port)
        TestSocket.shutdownWrite(fd)
        #expect(["a\n", "b\n"].contains(String(decoding: try TestSocket.receiveAll(fd), as: UTF8.self)))
        close(fd)
        #expect(metricValue(try metricsText(d), "sluice_connections_total{listener=\"dns\"}") == 9)
        let other = try freeUDPPort()
        try udpConfig(bind: "127.0.0.1:\(other)", targets: targets)
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        #expect(try ctl(d, ["reload"]).status == 0)
        try waitFor("the old flows closed", seconds: 5) {
            metricValue(try metricsText(d), "sluice_connections_active{listener=\"dns\"}") == 0
        }
        let moved = try UDPClient(port: other)
        #expect(["a", "b"].contains(try moved.target()))
        let probe = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(probe) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0, "the old port is free again")
    }

    /// `proxy_protocol: v2` on a udp listener: the first datagram of each flow carries a PROXY
    /// v2 header (DGRAM over IPv4: the client and the address it wrote to, here 127.0.0.2 on a
    /// wildcard listener), byte for byte as the published format says; later ones do not.
    @Test func proxyV2HeaderOnTheFirstDatagramOfEachFlow() throws {
        let a = try udpEcho("a")
        let port = try freeUDPPort()
        let d = try SluicedProcess(yaml: udpConfig(bind: "0.0.0.0:\(port)", targets: ["127.0.0.1:\(a.port)"],
                                                   listenerExtra: ["proxy_protocol: v2"]))
        defer { d.terminate() }
        for _ in 0..<2 {
            let c = try UDPClient(host: "127.0.0.2", port: port)
            let header = proxyV2Signature + [0x21, 0x12, 0x00, 0x0C, 127, 0, 0, 1, 127, 0, 0, 2]
                + bigEndian(c.localPort) + bigEndian(port)
            #expect(try c.exchange(Array("first".utf8)) == Array("a|".utf8) + header + Array("first".utf8))
            #expect(try c.exchange(Array("second".utf8)) == Array("a|second".utf8))
        }
    }

    /// A group's `proxy_protocol: v2` applies whatever its listener says: over IPv6 the header
    /// is DGRAM UDP6 with 16-byte addresses.
    @Test func groupProxyV2OverIPv6() throws {
        let a = try udpEcho("a", host: "::1")
        let port = try freeUDPPort(host: "::1")
        let d = try SluicedProcess(yaml: udpConfig(bind: "[::1]:\(port)", targets: ["[::1]:\(a.port)"],
                                                   groupExtra: ["health_check: off", "proxy_protocol: v2"]))
        defer { d.terminate() }
        let c = try UDPClient(host: "::1", port: port)
        let loopback6 = [UInt8](repeating: 0, count: 15) + [1]
        let header = proxyV2Signature + [0x21, 0x22, 0x00, 0x24] + loopback6 + loopback6
            + bigEndian(c.localPort) + bigEndian(port)
        #expect(try c.exchange([0x42]) == Array("a|".utf8) + header + [0x42])
        #expect(try c.exchange([0x43]) == Array("a|".utf8) + [0x43])
    }
}

/// The 12 bytes every PROXY v2 header starts with.
private let proxyV2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

private func bigEndian(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
