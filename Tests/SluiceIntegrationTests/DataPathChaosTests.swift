import Foundation
import SluiceTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Hostile clients against hostile targets while the daemon reloads, registers and drains:
/// nothing may trap, descriptors return to their baseline and memory stays bounded.
/// `CHAOS_SECONDS` makes it run longer (the default keeps CI short); `CHAOS_SEED` replays.
/// The limit leaves room for `CHAOS_SECONDS` up to 2400 (the default run takes ~15 s).
@Suite(.serialized, .timeLimit(.minutes(45)))
struct DataPathChaosTests {
    static func config(http: UInt16, tcp: UInt16, extra: UInt16, target: UInt16, withExtra: Bool, flip: Bool) -> String {
        var listeners = [
            "  - { name: web, protocol: http, bind: \"127.0.0.1:\(http)\", access_log: off, header_timeout: 1s, response_timeout: 1s, connect_timeout: 300ms, retry_idempotent: true, default: { forward: app } }",
            "  - { name: raw, protocol: tcp, bind: \"127.0.0.1:\(tcp)\", idle_timeout: 2s, default: { forward: pool } }",
        ]
        if withExtra {
            listeners.append("  - { name: extra, protocol: http, bind: \"[::1]:\(extra)\", access_log: off, header_timeout: 1s, rules: [{ priority: 1, when: { source: [\"::1/128\"] }, then: { respond: { status: 200, content_type: text/plain, body: \"v6\" } } }], default: { forward: app } }")
        }
        if flip { listeners.reverse() }
        return """
        node: { workers: 2, shutdown_grace: 2s, zone: zone-a }
        listeners:
        \(listeners.joined(separator: "\n"))
        target_groups:
          - name: app
            protocol: http
            algorithm: \(flip ? "least_outstanding" : "round_robin")
            cross_zone: prefer_local
            health_check: off
            targets:
              - { address: "127.0.0.1:\(target)", zone: zone-a }
              - { address: "127.0.0.1:1", zone: zone-b }
          - name: pool
            protocol: tcp
            health_check: off
            targets:
              - { address: "127.0.0.1:\(target)" }

        """
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    static func rssKiB(_ pid: Int32) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return -1 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    /// One hostile client exchange: a request template mutated at random, sent whole or
    /// in part, read for a moment, then dropped in one of several ways.
    static func hostileExchange(port: UInt16, host: String, rng: inout ChaosRandom) {
        guard let fd = try? TestSocket.connect(port: port, host: host, timeoutSeconds: 1) else { return }
        defer { close(fd) }
        var tv = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let templates = [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "GET /old/#{host}#{path} HTTP/1.0\r\nHost: h#{path}#{query}\r\nConnection: keep-alive\r\n\r\n",
            "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes",
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
        ]
        let pick = Int(rng.next() % UInt64(templates.count + 3))
        var bytes = pick < templates.count ? Array(templates[pick].utf8) : Self.h2Template(pick - templates.count)
        let mutations = Int(rng.next() % 6)
        let specials: [UInt8] = [0, 9, 10, 13, 32, 58, 0x7F, 0xFF, UInt8(ascii: "-"), UInt8(ascii: "9")]
        for _ in 0..<mutations where !bytes.isEmpty {
            let i = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 4 {
            case 0: bytes[i] = specials[Int(rng.next() % UInt64(specials.count))]
            case 1: bytes.insert(specials[Int(rng.next() % UInt64(specials.count))], at: i)
            case 2: bytes.remove(at: i)
            default: bytes.insert(contentsOf: Array(repeating: UInt8(ascii: "A"), count: Int(rng.next() % 70_000)), at: i)
            }
        }
        let cut = rng.next() % 4 == 0 ? Int(rng.next() % UInt64(bytes.count + 1)) : bytes.count
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, cut, Int32(MSG_NOSIGNAL)) }
        switch rng.next() % 4 {
        case 0: shutdown(fd, Int32(SHUT_WR))
        case 1:
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            return
        default: break
        }
        var buf = [UInt8](repeating: 0, count: 16384)
        for _ in 0..<3 where recv(fd, &buf, buf.count, 0) > 0 {}
    }

    /// An h2c prior-knowledge exchange (the http listener serves HTTP/2 too): preface,
    /// SETTINGS, then requests, body, resets, pings, window updates — for the mutations.
    static func h2Template(_ variant: Int) -> [UInt8] {
        func frame(_ type: UInt8, _ flags: UInt8, _ stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
            let n = payload.count
            return [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n),
                    type, flags, UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16),
                    UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)] + payload
        }
        // HPACK: :method GET / POST (static 2 / 3), :scheme http (6), :path / (4), :authority "a".
        let get: [UInt8] = [0x82, 0x86, 0x84, 0x41, 0x01, 0x61]
        let post: [UInt8] = [0x83, 0x86, 0x84, 0x41, 0x01, 0x61]
        var out = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(4, 0, 0, [])
        switch variant {
        case 0:
            out += frame(1, 0x05, 1, get) + frame(1, 0x05, 3, get) + frame(6, 0, 0, Array(repeating: 7, count: 8))
        case 1:
            out += frame(1, 0x04, 1, post) + frame(0, 0, 1, Array("hello".utf8)) + frame(0, 0x01, 1, Array("!".utf8))
                + frame(8, 0, 1, [0, 0, 0x40, 0]) + frame(8, 0, 0, [0, 1, 0, 0])
        default:
            for i in 0..<20 { out += frame(1, 0x05, UInt32(2 * i + 1), get) + frame(3, 0, UInt32(2 * i + 1), [0, 0, 0, 8]) }
        }
        return out
    }

    @Test func hostileClientsAndTargetsDuringReloadsAndDrains() throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = min(Double(env["CHAOS_SECONDS"] ?? "") ?? 12, 2400)
        let seed = UInt64(env["CHAOS_SEED"] ?? "") ?? UInt64(Date().timeIntervalSince1970)
        let target = try ChaosTarget(seed: seed)
        let spare = try HTTPBackend(name: "spare")
        let (http, tcp, extra) = (try TestSocket.freePort(), try TestSocket.freePort(), try TestSocket.freePort())
        let d = try SluicedProcess(yaml: Self.config(http: http, tcp: tcp, extra: extra, target: target.port,
                                                     withExtra: true, flip: false))
        defer { d.terminate() }
        // Baseline once the workers hold their listeners and a first exchange warmed the pools.
        _ = try? get(http, "/")
        let baseline = Self.openDescriptors(d.pid)
        let stop = Atomic<Bool>(false)
        let exchanges = Atomic<Int>(0)
        let finished = DispatchSemaphore(value: 0)
        let clients = (0..<8).map { i in
            Thread {
                defer { finished.signal() }
                var rng = ChaosRandom(seed: seed &+ UInt64(i) &* 7919)
                while !stop.load(ordering: .relaxed) {
                    switch rng.next() % 5 {
                    case 0: Self.hostileExchange(port: tcp, host: "127.0.0.1", rng: &rng)
                    case 1: Self.hostileExchange(port: extra, host: "::1", rng: &rng)
                    default: Self.hostileExchange(port: http, host: "127.0.0.1", rng: &rng)
                    }
                    _ = exchanges.add(1, ordering: .relaxed)
                }
            }
        }
        clients.forEach { $0.start() }
        // The control plane churns meanwhile: reloads that remove, add and reorder listeners,
        // registrations with odd weights and zones, drains.
        var rng = ChaosRandom(seed: seed ^ 0xC0FFEE)
        let end = Date().addingTimeInterval(seconds)
        var round = 0
        while Date() < end {
            round += 1
            let yaml = Self.config(http: http, tcp: tcp, extra: extra, target: target.port,
                                   withExtra: rng.next() % 2 == 0, flip: rng.next() % 2 == 0)
            try (yaml + "control:\n  socket: \(d.controlSocket)\n  state: \(d.statePath)\n")
                .write(toFile: d.configPath, atomically: true, encoding: .utf8)
            d.send(signal: SIGHUP)
            let w = Int(rng.next() % 1000)
            _ = try? ctl(d, ["targets", "register", "app", "127.0.0.1:\(spare.port)", "--zone",
                             rng.next() % 2 == 0 ? "zone-a" : "zone-b", "--weight", "\(w)"])
            if rng.next() % 2 == 0 {
                _ = try? ctl(d, ["targets", "deregister", "app", "127.0.0.1:\(spare.port)"])
            }
            usleep(UInt32(100_000 + rng.next() % 400_000))  // pacing the churn, not synchronisation
            #expect(d.isRunning, "seed \(seed), round \(round)")
            if !d.isRunning { break }
        }
        stop.store(true, ordering: .relaxed)
        // Each client finishes its current exchange (bounded by its socket timeouts).
        for _ in clients { #expect(finished.wait(timeout: .now() + 30) == .success) }
        target.stop()
        print("chaos: \(exchanges.load(ordering: .relaxed)) hostile exchanges, \(round) control rounds, seed \(seed)")
        #expect(d.isRunning, "the daemon survived \(exchanges.load(ordering: .relaxed)) hostile exchanges (seed \(seed))")
        #expect(!d.log.contains("Fatal error"), "\(d.log.suffix(2000))")
        // Everything the chaos opened is closed again: only listeners, pools kept by design
        // (a few idle pipes) and the control plane's own remain.
        var now = Self.openDescriptors(d.pid)
        let deadline = Date().addingTimeInterval(15)
        while now > baseline + 24 && Date() < deadline {
            usleep(200_000)
            now = Self.openDescriptors(d.pid)
        }
        #expect(now <= baseline + 24, "descriptors: \(baseline) before, \(now) after (seed \(seed))")
        #expect(Self.rssKiB(d.pid) < 400_000, "RSS \(Self.rssKiB(d.pid)) KiB")
        #expect(try get(http, "/ping-after").status > 0, "still serving")
        _ = target.answered.load(ordering: .relaxed)
    }
}
