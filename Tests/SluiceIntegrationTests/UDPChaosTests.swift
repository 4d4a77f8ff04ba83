import Foundation
import SluiceTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// UDP under chaos: hundreds of client ports (more than `max_flows`) sending datagrams of
/// random sizes and bytes, clients going silent past the idle timeout, targets killed and
/// restarted, a target deregistered and registered again, reloads that remove and re-add a
/// group, an IPv6 listener. The daemon must survive, every echo that arrives must be byte for
/// byte a datagram its client sent, the metrics must add up, and memory must stay bounded.
/// `UDP_CHAOS_SECONDS` runs it longer (default 20 s); `CHAOS_SEED` replays a run's choices.
@Suite(.serialized, .timeLimit(.minutes(45)))
struct UDPChaosTests {
    /// Listener `dns` (IPv4, `max_flows: 64`) forwards to `echo` (three targets); `dns6`
    /// (IPv6 wildcard: replies leave from the address written to, `IPV6_PKTINFO`) forwards to
    /// `alt` (the third target alone) when it exists, else to `echo`. `flip` lists the
    /// listeners the other way round (their indices change; their sockets and flows stay).
    static func config(port: UInt16, port6: UInt16, targets: [UInt16], withAlt: Bool, flip: Bool = false) -> String {
        var listeners = [
            "  - { name: dns, protocol: udp, bind: \"127.0.0.1:\(port)\", max_flows: 64, idle_timeout: 1s, default: { forward: echo } }",
            "  - { name: dns6, protocol: udp, bind: \"[::]:\(port6)\", max_flows: 64, idle_timeout: 1s, default: { forward: \(withAlt ? "alt" : "echo") } }",
        ]
        if flip { listeners.reverse() }
        var text = """
        node: { workers: 2, shutdown_grace: 2s }
        listeners:
        \(listeners.joined(separator: "\n"))
        target_groups:
          - name: echo
            protocol: udp
            health_check: off
            deregistration_delay: 0s
            targets:
        \(targets.map { "      - { address: \"127.0.0.1:\($0)\" }" }.joined(separator: "\n"))

        """
        if withAlt {
            text += """
              - name: alt
                protocol: udp
                health_check: off
                targets:
                  - { address: "127.0.0.1:\(targets[2])" }

            """
        }
        return text
    }

    /// What the driver threads saw.
    final class Tally: Sendable {
        let sent = Atomic<Int>(0)
        let replies = Atomic<Int>(0)
        let replies6 = Atomic<Int>(0)
        let mismatched = Atomic<Int>(0)
        /// Replies on a client that had been silent for longer than the idle timeout (its
        /// flow expired in between, so the reply came through a new flow).
        let revived = Atomic<Int>(0)
        let clients = Atomic<Int>(0)
    }

    /// One client port of a driver thread: its socket and the last datagrams it sent (an echo
    /// must be one of them, byte for byte).
    struct Client {
        let fd: Int32
        var recent: [[UInt8]] = []
        var lastSend: UInt64 = 0
    }

    static func monotonicMillis() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    /// A datagram size: mostly small, sometimes anything up to the IPv4 maximum, sometimes an edge.
    static func size(_ rng: inout ChaosRandom) -> Int {
        switch rng.next() % 20 {
        case 0: return Int(rng.next() % 65_508)
        case 1: return [0, 1, 65_507][Int(rng.next() % 3)]
        default: return Int(rng.next() % 1_501)
        }
    }

    /// A driver thread: up to `maxClients` client ports on `host`:`port`, opened over time and
    /// kept open to the end (a closed port could come back as another client's and receive a
    /// late echo of the old one's). Each round a few clients (some new) send one datagram each,
    /// then their echoes are awaited for up to 100 ms; every echo is checked against what that
    /// client sent.
    static func drive(host: String, port: UInt16, maxClients: Int, seed: UInt64, stop: borrowing Atomic<Bool>,
                      tally: Tally, v6: Bool, firstMismatch: SendBox) {
        var rng = ChaosRandom(seed: seed)
        var clients: [Client] = []
        defer { for c in clients { close(c.fd) } }
        var buf = [UInt8](repeating: 0, count: 70_000)

        /// Reads every echo waiting for client `i`; returns how many were datagrams it sent.
        func drain(_ i: Int) -> Int {
            var matched = 0
            while true {
                let n = buf.withUnsafeMutableBytes { recv(clients[i].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n < 0 { break }
                let got = Array(buf[0..<n])
                if clients[i].recent.contains(got) {
                    matched += 1
                } else {
                    _ = tally.mismatched.add(1, ordering: .relaxed)
                    firstMismatch.set("\(host) client port \(TestSocket.localPort(clients[i].fd)): \(n) bytes, "
                        + "not one of its last \(clients[i].recent.count) datagrams (sizes \(clients[i].recent.map(\.count)))")
                }
            }
            if matched > 0 {
                if v6 { tally.replies6.add(matched, ordering: .relaxed) } else { tally.replies.add(matched, ordering: .relaxed) }
            }
            return matched
        }

        while !stop.load(ordering: .relaxed) {
            // Who sends this round: a new client now and then (until the pool is full), else old ones.
            var chosen: [Int] = []
            for _ in 0..<8 {
                if clients.count < maxClients && (clients.isEmpty || rng.next() % 4 == 0) {
                    guard let fd = try? TestSocket.connect(port: port, host: host, type: Int32(SOCK_DGRAM.rawValue)) else { continue }
                    var big: Int32 = 1 << 20
                    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, socklen_t(MemoryLayout<Int32>.size))
                    clients.append(Client(fd: fd))
                    _ = tally.clients.add(1, ordering: .relaxed)
                    chosen.append(clients.count - 1)
                } else if !clients.isEmpty {
                    let i = Int(rng.next() % UInt64(clients.count))
                    if !chosen.contains(i) { chosen.append(i) }
                }
            }
            let now = monotonicMillis()
            var silentBefore: Set<Int> = []
            for i in chosen {
                _ = drain(i)  // late echoes first
                if clients[i].lastSend > 0 && now - clients[i].lastSend > 1_500 { silentBefore.insert(i) }
                let payload = randomPayload(count: size(&rng), seed: rng.next())
                clients[i].recent.append(payload)
                if clients[i].recent.count > 8 { clients[i].recent.removeFirst() }
                clients[i].lastSend = now
                let n = payload.withUnsafeBytes { send(clients[i].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n == payload.count { _ = tally.sent.add(1, ordering: .relaxed) }
            }
            // Echoes of this round, for up to 100 ms.
            let deadline = monotonicMillis() + 100
            var waiting = chosen
            while !waiting.isEmpty {
                let left = Int64(deadline) - Int64(monotonicMillis())
                if left <= 0 { break }
                var fds = waiting.map { pollfd(fd: clients[$0].fd, events: Int16(POLLIN), revents: 0) }
                guard poll(&fds, nfds_t(fds.count), Int32(left)) > 0 else { break }
                var still: [Int] = []
                for (k, i) in waiting.enumerated() {
                    if fds[k].revents == 0 {
                        still.append(i)
                        continue
                    }
                    if drain(i) > 0 && silentBefore.contains(i) { tally.revived.add(1, ordering: .relaxed) }
                }
                waiting = still
            }
        }
    }

    static func echoTarget(port: UInt16? = nil) throws -> FixtureProcess {
        try FixtureProcess(script: "udp_echo.py", arguments: ["-", "--no-tcp"] + (port.map { ["--port", "\($0)"] } ?? []))
    }

    @Test func hostileDatagramsWhileTargetsDieAndGroupsChange() throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = min(Double(env["UDP_CHAOS_SECONDS"] ?? "") ?? 20, 2400)
        let seed = UInt64(env["CHAOS_SEED"] ?? "") ?? UInt64(Date().timeIntervalSince1970)
        var targets: [FixtureProcess?] = try (0..<3).map { _ in try Self.echoTarget() }
        let ports = targets.map { $0!.port }
        let addresses = ports.map { "127.0.0.1:\($0)" }
        let port = try freeUDPPort()
        let port6 = try freeUDPPort(host: "::1")
        let d = try SluicedProcess(yaml: Self.config(port: port, port6: port6, targets: ports, withAlt: true))
        defer { d.terminate() }
        let baselineFds = DataPathChaosTests.openDescriptors(d.pid)
        func reload(withAlt: Bool, flip: Bool = false) throws {
            try (Self.config(port: port, port6: port6, targets: ports, withAlt: withAlt, flip: flip)
                + "control:\n  socket: \(d.controlSocket)\n  state: \(d.statePath)\n")
                .write(toFile: d.configPath, atomically: true, encoding: .utf8)
            _ = try? ctl(d, ["reload"])
        }

        let stop = Atomic<Bool>(false)
        let tally = Tally()
        let mismatch = SendBox()
        let finished = DispatchSemaphore(value: 0)
        let drivers = (0..<5).map { i in
            Thread {
                defer { finished.signal() }
                if i == 4 {
                    Self.drive(host: "::1", port: port6, maxClients: 60, seed: seed &+ 99, stop: stop, tally: tally,
                               v6: true, firstMismatch: mismatch)
                } else {
                    Self.drive(host: "127.0.0.1", port: port, maxClients: 110, seed: seed &+ UInt64(i) &* 7919,
                               stop: stop, tally: tally, v6: false, firstMismatch: mismatch)
                }
            }
        }
        drivers.forEach { $0.start() }

        // The chaos: targets killed and restarted on their port (port unreachable meanwhile), a
        // target deregistered and registered again, reloads removing and re-adding group alt.
        var rng = ChaosRandom(seed: seed ^ 0x5EED)
        let start = Date()
        let end = start.addingTimeInterval(seconds)
        var warmRSS = -1
        var round = 0
        var actions: [String: Int] = [:]
        var diedAt = [0, 0, 0]
        var deregisteredAt: [Int?] = [nil, nil, nil]
        while Date() < end {
            round += 1
            if warmRSS < 0 && Date().timeIntervalSince(start) > 3 { warmRSS = DataPathChaosTests.rssKiB(d.pid) }
            // A target stays dead or deregistered for a few rounds at most (else a listener
            // could see no echo for most of the run and the assertions on echoes would
            // depend on the seed).
            for j in 0..<3 {
                if targets[j] == nil && round - diedAt[j] >= 4 {
                    targets[j] = try? Self.echoTarget(port: ports[j])
                    actions["restart", default: 0] += 1
                }
                if let r = deregisteredAt[j], round - r >= 4 {
                    _ = try? ctl(d, ["targets", "register", "echo", addresses[j]])
                    deregisteredAt[j] = nil
                    actions["register", default: 0] += 1
                }
            }
            let i = round == 1 ? 0 : Int(rng.next() % 3)
            switch round == 1 ? 0 : rng.next() % 4 {  // a target dies first, so port unreachable is met
            case 0:
                if targets[i] != nil {
                    targets[i]?.stop()
                    targets[i] = nil
                    diedAt[i] = round
                    actions["kill", default: 0] += 1
                }
            case 1:
                if targets[i] == nil {
                    targets[i] = try? Self.echoTarget(port: ports[i])
                    actions["restart", default: 0] += 1
                }
            case 2:
                let verb = rng.next() % 2 == 0 ? "deregister" : "register"
                _ = try? ctl(d, ["targets", verb, "echo", addresses[i]])
                deregisteredAt[i] = verb == "deregister" ? round : nil
                actions[verb, default: 0] += 1
            default:
                let withAlt = rng.next() % 2 == 0
                try reload(withAlt: withAlt, flip: rng.next() % 2 == 0)
                actions[withAlt ? "reload+alt" : "reload-alt", default: 0] += 1
            }
            usleep(UInt32(150_000 + rng.next() % 350_000))  // pacing the chaos, not synchronisation
            #expect(d.isRunning, "seed \(seed), round \(round)")
            if !d.isRunning { break }
        }
        stop.store(true, ordering: .relaxed)
        for _ in drivers { #expect(finished.wait(timeout: .now() + 30) == .success) }
        print("udp chaos: \(tally.sent.load(ordering: .relaxed)) datagrams sent by \(tally.clients.load(ordering: .relaxed)) "
              + "client ports, \(tally.replies.load(ordering: .relaxed)) + \(tally.replies6.load(ordering: .relaxed)) (IPv6) "
              + "echoes, \(tally.revived.load(ordering: .relaxed)) after an expiry; \(round) rounds \(actions); seed \(seed)")
        #expect(d.isRunning, "the daemon survived (seed \(seed))")
        #expect(!d.log.contains("Fatal error"), "\(d.log.suffix(2000))")
        #expect(tally.mismatched.load(ordering: .relaxed) == 0,
                "every echo is a datagram its client sent: \(mismatch.value ?? "") (seed \(seed))")
        #expect(tally.replies.load(ordering: .relaxed) > 100 && tally.replies6.load(ordering: .relaxed) > 10)
        #expect(tally.clients.load(ordering: .relaxed) > 300, "hundreds of client ports")
        #expect(tally.revived.load(ordering: .relaxed) > 0, "clients silent past the idle timeout are answered again")

        // Every flow expires once the clients are quiet (idle_timeout 1 s).
        try waitFor("every flow expired", seconds: 10) {
            let m = try metricsText(d)
            return metricValue(m, "sluice_connections_active{listener=\"dns\"}") == 0
                && metricValue(m, "sluice_connections_active{listener=\"dns6\"}") == 0
        }
        let m = try metricsText(d)
        // No flow left, so no target has one in flight (opened/closed and re-pins balanced,
        // across reloads that moved flows between Plans).
        for group in ["echo", "alt"] {
            let r = try runTool(sluicectlPath, ["targets", "list", group, "--json", "--socket", d.controlSocket])
            // The last reload may have removed group alt: then it has nothing to list.
            #expect(r.status == 0 || group == "alt", "\(group): \(r.output)")
            let obj = r.status == 0 ? try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any] : nil
            let listed = obj?["targets"] as? [[String: Any]] ?? []
            #expect(listed.count >= (group == "echo" ? 1 : 0), "\(group): \(r.output)")
            for t in listed { #expect(t["in_flight"] as? Int == 0, "\(group): \(t) (seed \(seed))") }
        }
        #expect(metricValue(m, "sluice_errors_total{listener=\"dns\",kind=\"udp_flow_table_full\"}") > 0, "\(m)")
        #expect(metricValue(m, "sluice_errors_total{listener=\"dns\",kind=\"udp_dropped\"}") > 0, "port unreachable: \(m)")
        // Every flow socket closed with its flow: the listeners' sockets, the control plane's
        // and a few transient ones (the metrics request) remain.
        let fds = DataPathChaosTests.openDescriptors(d.pid)
        #expect(fds <= baselineFds + 8, "descriptors: \(baselineFds) at start, \(fds) once every flow expired")
        for l in ["dns", "dns6"] {
            let inbound = metricValue(m, "sluice_udp_datagrams_total{listener=\"\(l)\",direction=\"in\"}")
            let outbound = metricValue(m, "sluice_udp_datagrams_total{listener=\"\(l)\",direction=\"out\"}")
            #expect(inbound > 0 && outbound > 0 && outbound <= inbound, "\(l): \(inbound) in, \(outbound) out")
            #expect(metricValue(m, "sluice_connections_total{listener=\"\(l)\"}") > 0)
        }
        #expect(metricValue(m, "sluice_udp_datagrams_total{listener=\"dns\",direction=\"in\"}")
                    <= Double(tally.sent.load(ordering: .relaxed)), "no datagram counted twice")

        // Everything back: targets up and registered, alt present. A fresh client on each
        // listener gets its echo byte for byte (the largest datagram too).
        for i in 0..<3 where targets[i] == nil { targets[i] = try Self.echoTarget(port: ports[i]) }
        for a in addresses { _ = try? ctl(d, ["targets", "register", "echo", a]) }
        try reload(withAlt: true)
        for (host, p) in [("127.0.0.1", port), ("::1", port6)] {
            let c = try UDPClient(host: host, port: p)
            for size in [1000, 65_507, 0] {
                let payload = randomPayload(count: size, seed: seed &+ UInt64(size))
                #expect(try c.exchange(payload) == payload, "\(host): \(size) bytes after the chaos")
            }
        }
        // Memory: the datagram batches (2 per worker, 32 × 64 KiB each, touched as large
        // datagrams arrive) are the only size-dependent memory, and flows are bounded by
        // max_flows; twice the RSS after 3 s of the same traffic leaves room for the batches
        // filling up (8 MiB at most) and nothing for a leak per datagram or flow.
        let endRSS = DataPathChaosTests.rssKiB(d.pid)
        print("udp chaos: RSS \(warmRSS) KiB after 3 s, \(endRSS) KiB at the end; descriptors \(baselineFds) at start, \(fds) after")
        #expect(warmRSS > 0 && endRSS < 2 * warmRSS, "RSS \(warmRSS) KiB after warm-up, \(endRSS) KiB at the end")
        d.send(signal: SIGTERM)
        #expect(d.waitForExit(seconds: 10) == 0, "a clean exit after the chaos:\n\(d.log.suffix(2000))")
    }
}
