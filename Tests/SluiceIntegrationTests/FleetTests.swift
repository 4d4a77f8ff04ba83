import Foundation
import SluiceTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A daemon config of a fleet node: one http listener forwarding to `app` (no static targets
/// unless given), `workers: 1`, a registry block with a short lease.
func fleetConfig(port: UInt16, etcd: EtcdProcess, name: String, zone: String, prefix: String = "/sluice/test",
                 targets: [UInt16] = [], control: String? = nil) -> String {
    var yaml = httpConfig(port: port, groups: [("app", targets)], group: ["deregistration_delay: 20s"])
    yaml = yaml.replacingOccurrences(of: "node:\n", with: "node:\n  name: \(name)\n  zone: \(zone)\n")
    yaml += "registry:\n  etcd:\n    endpoints: [\"\(etcd.endpoint)\"]\n    prefix: \(prefix)\n"
        + "    dial_timeout: 500ms\n    lease_ttl: 2s\n"
    if let control { yaml += control }
    return yaml
}

/// A fleet node on a free port with `fleetConfig`'s defaults: the daemon and its listener's port.
func fleetNode(_ name: String, _ zone: String, _ etcd: EtcdProcess) throws -> (SluicedProcess, UInt16) {
    let port = try TestSocket.freePort()
    return (try SluicedProcess(yaml: fleetConfig(port: port, etcd: etcd, name: name, zone: zone)), port)
}

/// One call to etcd's JSON gateway (keys and values base64), its JSON answer.
@discardableResult
func etcdCall(_ etcd: EtcdProcess, _ path: String, _ body: [String: Any], port: UInt16? = nil) throws -> [String: Any] {
    let data = try JSONSerialization.data(withJSONObject: body)
    let text = String(decoding: data, as: UTF8.self)
    let r = try HTTPClient.request(port: port ?? etcd.clientPort, "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + "Content-Type: application/json\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)")
    guard r.status == 200 else { throw TestSocket.Failure("etcd \(path): HTTP \(r.status) \(r.text)") }
    return r.json
}

func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

func etcdPut(_ etcd: EtcdProcess, _ key: String, _ value: String) throws {
    try etcdCall(etcd, "/v3/kv/put", ["key": b64(key), "value": b64(value)])
}

/// How many keys start with `prefix`.
func etcdCount(_ etcd: EtcdProcess, prefix: String) throws -> Int {
    var end = Array(prefix.utf8)
    end[end.count - 1] += 1
    let answer = try etcdCall(etcd, "/v3/kv/range", ["key": b64(prefix), "range_end": Data(end).base64EncodedString(),
                                                      "count_only": true])
    return Int(answer["count"] as? String ?? "0") ?? 0
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
func poll(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// The target's requests in flight as the node's API shows them.
func inFlight(_ d: SluicedProcess, _ address: String) throws -> Int {
    let r = try ctl(d, ["targets", "list", "app", "--json"])
    guard let obj = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any],
          let targets = obj["targets"] as? [[String: Any]] else { return -1 }
    return targets.first { $0["address"] as? String == address }?["in_flight"] as? Int ?? -1
}

func backendOf(_ port: UInt16) -> String? { (try? get(port, "/"))?.header("x-backend") }

func fleetMetrics(_ d: SluicedProcess) throws -> String {
    try runTool("curl", ["-s", "--max-time", "5", "--unix-socket", d.controlSocket, "http://x/metrics"]).output
}

/// SPEC §10: several nodes share registrations through a real etcd.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct FleetTests {
    @Test func registrationThroughOneNodeRoutesOnAnotherAndNodesAreListed() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let (a, pa) = try fleetNode("node-a", "zone-a", etcd)
        defer { a.terminate() }
        let (nb, pb) = try fleetNode("node-b", "zone-b", etcd)
        defer { nb.terminate() }
        #expect(try poll(10) { try ctl(a, ["nodes"]).output.contains("node-b") }, "both nodes announce themselves")
        let reg = try ctl(a, ["targets", "register", "app", "127.0.0.1:\(b.port)", "--zone", "zone-b"])
        #expect(reg.status == 0, "\(reg.output)")
        let registered = Date()
        #expect(poll(3) { backendOf(pb) == "b" }, "node B routes to a target registered through node A")
        #expect(Date().timeIntervalSince(registered) < 1.5, "applied within about a second")
        #expect(backendOf(pa) == "b")
        // The API says 201 for a new registration and 200 for one already there (SPEC §6).
        let post = { (address: String) throws -> String in
            try runTool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--unix-socket",
                                 a.controlSocket, "-H", "Content-Type: application/json", "-d", "{\"address\": \"\(address)\"}",
                                 "http://x/v1/target-groups/app/targets"]).output
        }
        #expect(try post("127.0.0.1:1") == "201")
        #expect(try post("127.0.0.1:1") == "200")
        let nodes = try ctl(a, ["nodes"])
        #expect(nodes.output.contains("node-a") && nodes.output.contains("zone-b"), "\(nodes.output)")
        // Leases lost (revoked here; expired during a long outage alike): granted again and the
        // node keys put again.
        let leases = try etcdCall(etcd, "/v3/lease/leases", [:])["leases"] as? [[String: Any]] ?? []
        #expect(leases.count >= 2)
        for l in leases { try etcdCall(etcd, "/v3/lease/revoke", ["ID": l["ID"] as? String ?? "0"]) }
        let revoked = Set(leases.compactMap { $0["ID"] as? String })
        #expect(try poll(10) {
            let now = try etcdCall(etcd, "/v3/lease/leases", [:])["leases"] as? [[String: Any]] ?? []
            let announced = try etcdCount(etcd, prefix: "/sluice/test/nodes/")
            return Set(now.compactMap { $0["ID"] as? String }).subtracting(revoked).count >= 2 && announced == 2
        }, "both nodes announced again on new leases")
        // A node killed without a goodbye leaves the list once its lease expires.
        nb.send(signal: SIGKILL)
        #expect(try poll(15) { !(try ctl(a, ["nodes"]).output.contains("node-b")) }, "node B's lease expired")
        #expect(try ctl(a, ["nodes"]).output.contains("node-a"))
    }

    @Test func directPutsRegisterAndMalformedValuesAreCounted() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let (a, pa) = try fleetNode("node-a", "zone-a", etcd)
        defer { a.terminate() }
        let (nb, pb) = try fleetNode("node-b", "zone-b", etcd)
        defer { nb.terminate() }
        let key = "/sluice/test/targets/app/127.0.0.1:\(b.port)"
        if let put = try etcd.etcdctl(["put", key, "{\"zone\": \"zone-a\", \"weight\": 1}"]) {
            #expect(put.status == 0, "\(put.output)")
        } else {
            try etcdPut(etcd, key, "{\"zone\": \"zone-a\", \"weight\": 1}")
        }
        #expect(poll(5) { backendOf(pa) == "b" && backendOf(pb) == "b" }, "an autoscaler's put registers on every node")
        try etcdPut(etcd, "/sluice/test/targets/app/127.0.0.1:1", "{not json")
        try etcdPut(etcd, "/sluice/test/targets/app/not-an-address", "{\"zone\": \"z\", \"weight\": 1}")
        try etcdPut(etcd, "/sluice/test/targets/app/127.0.0.1:2", "{\"zone\": \"z\", \"weight\": 5000}")
        try etcdPut(etcd, "/sluice/test/targets/nope/127.0.0.1:3", "{\"zone\": \"z\", \"weight\": 1}")
        for d in [a, nb] {
            #expect(try poll(5) {
                let m = try fleetMetrics(d)
                return m.contains("sluice_registry_malformed_total{group=\"app\"} 3")
                    && m.contains("sluice_registry_malformed_total{group=\"nope\"} 1")
            }, "\((try? fleetMetrics(d)) ?? "")")
            #expect(d.isRunning)
            #expect(d.log.contains("ignored /sluice/test/targets/app/not-an-address"), "an event says what was ignored")
            #expect(try targetStates(d, group: "app").keys.sorted() == ["127.0.0.1:\(b.port)"])
        }
        #expect(backendOf(pb) == "b")
    }

    @Test func deregisterWaitReturnsWhenTheWholeFleetLetGo() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let (a, _) = try fleetNode("node-a", "zone-a", etcd)
        defer { a.terminate() }
        let (nb, pb) = try fleetNode("node-b", "zone-b", etcd)
        defer { nb.terminate() }
        let (nc, pc) = try fleetNode("node-c", "zone-c", etcd)
        defer { nc.terminate() }
        #expect(try ctl(a, ["targets", "register", "app", "127.0.0.1:\(b.port)"]).status == 0)
        #expect(poll(5) { backendOf(pb) == "b" && backendOf(pc) == "b" })
        let finished = Mutex<Date?>(nil)
        let slow = Thread {
            let r = try? get(pb, "/slow?ms=2000")
            finished.withLock { $0 = r?.status == 200 ? Date() : nil }
        }
        slow.start()
        #expect(try poll(5) { try inFlight(nb, "127.0.0.1:\(b.port)") == 1 },
                "the slow request is in flight on node B")
        let dereg = try ctl(a, ["targets", "deregister", "app", "127.0.0.1:\(b.port)", "--wait", "--timeout", "30s"])
        let returned = Date()
        #expect(dereg.status == 0, "\(dereg.output)")
        let done = try #require(finished.withLock { $0 } as Date?, "the request in flight on B finished first")
        #expect(done <= returned)
        #expect(try etcdCount(etcd, prefix: "/sluice/test/targets/") == 0)
        #expect(try etcdCount(etcd, prefix: "/sluice/test/drained/") == 0)
    }

    @Test func aDeadNodeStopsHoldingUpADrainOnceItsLeaseExpires() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let (a, _) = try fleetNode("node-a", "zone-a", etcd)
        defer { a.terminate() }
        let (nb, pb) = try fleetNode("node-b", "zone-b", etcd)
        defer { nb.terminate() }
        #expect(try ctl(a, ["targets", "register", "app", "127.0.0.1:\(b.port)"]).status == 0)
        #expect(poll(5) { backendOf(pb) == "b" })
        nb.send(signal: SIGKILL)
        let started = Date()
        let dereg = try ctl(a, ["targets", "deregister", "app", "127.0.0.1:\(b.port)", "--wait", "--timeout", "30s"])
        #expect(dereg.status == 0, "\(dereg.output)")
        // node B never acknowledged: its lease (2 s) expiring let the drain end, not the 20 s delay.
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(try etcdCount(etcd, prefix: "/sluice/test/targets/") == 0)
    }

    @Test func losingEtcdKeepsServingAndRefusesRegistrations() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let c = try HTTPBackend(name: "c")
        let (a, pa) = try fleetNode("node-a", "zone-a", etcd)
        defer { a.terminate() }
        let (nb, pb) = try fleetNode("node-b", "zone-b", etcd)
        defer { nb.terminate() }
        #expect(try ctl(a, ["targets", "register", "app", "127.0.0.1:\(b.port)"]).status == 0)
        #expect(poll(5) { backendOf(pb) == "b" })
        #expect(try fleetMetrics(a).contains("sluice_registry_connected 1"))
        etcd.stop()
        var failed = 0
        #expect(try poll(10) {
            if backendOf(pa) != "b" { failed += 1 }
            if backendOf(pb) != "b" { failed += 1 }
            return try fleetMetrics(a).contains("sluice_registry_connected 0")
        })
        for _ in 0..<20 where backendOf(pb) != "b" { failed += 1 }
        #expect(failed == 0, "requests to known targets go on without etcd")
        let refused = try ctl(a, ["targets", "register", "app", "127.0.0.1:\(c.port)"])
        #expect(refused.status != 0 && refused.output.contains("RegistryUnavailable"), "\(refused.output)")
        for args in [["targets", "deregister", "app", "127.0.0.1:\(b.port)"], ["targets", "set", "app", "127.0.0.1:\(b.port)", "--weight", "3"]] {
            let r = try ctl(nb, args)
            #expect(r.status != 0 && r.output.contains("RegistryUnavailable"), "\(args): \(r.output)")
        }
        #expect(a.log.contains("registry_lost"))
        try etcd.restart()
        #expect(try poll(15) { try fleetMetrics(a).contains("sluice_registry_connected 1") })
        #expect(a.log.contains("registry_connected"))
        let again = try ctl(a, ["targets", "register", "app", "127.0.0.1:\(c.port)"])
        #expect(again.status == 0, "\(again.output)")
        #expect(poll(5) { Set((0..<6).compactMap { _ in backendOf(pb) }) == ["b", "c"] })
    }

    @Test func aNodeRestartedWithoutEtcdKeepsItsTargets() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let pa = try TestSocket.freePort()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-fleet-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let control = "control:\n  socket: \(dir)/c.sock\n  state: \(dir)/state.json\n"
        let yaml = fleetConfig(port: pa, etcd: etcd, name: "node-a", zone: "zone-a", control: control)
        let a = try SluicedProcess(yaml: yaml)
        #expect(try runTool(sluicectlPath, ["targets", "register", "app", "127.0.0.1:\(b.port)", "--socket", "\(dir)/c.sock"])
            .status == 0)
        #expect(poll(5) { backendOf(pa) == "b" })
        #expect(try String(contentsOfFile: "\(dir)/state.json", encoding: .utf8).contains("127.0.0.1:\(b.port)"))
        a.send(signal: SIGTERM)
        #expect(a.waitForExit(seconds: 10) == 0)
        etcd.stop()
        let again = try SluicedProcess(yaml: yaml)
        defer { again.terminate() }
        #expect(poll(5) { backendOf(pa) == "b" }, "the state file's registrations, without etcd")
    }

    @Test func changesMissedWhileCompactedAwayAreReadAgain() throws {
        let etcd = try EtcdProcess()
        let b = try HTTPBackend(name: "b")
        let c = try HTTPBackend(name: "c")
        let (a, pa) = try fleetNode("node-a", "zone-a", etcd)
        defer { a.terminate() }
        #expect(try ctl(a, ["targets", "register", "app", "127.0.0.1:\(b.port)"]).status == 0)
        #expect(poll(5) { backendOf(pa) == "b" })
        // etcd answers elsewhere: the node is cut off while the registry changes and is compacted.
        let other = try TestSocket.freePort()
        try etcd.restart(onClientPort: other)
        #expect(try poll(10) { try fleetMetrics(a).contains("sluice_registry_connected 0") })
        try etcdCall(etcd, "/v3/kv/put", ["key": b64("/sluice/test/targets/app/127.0.0.1:\(c.port)"),
                                          "value": b64("{\"zone\": \"zone-a\", \"weight\": 1}")], port: other)
        let deleted = try etcdCall(etcd, "/v3/kv/deleterange", ["key": b64("/sluice/test/targets/app/127.0.0.1:\(b.port)")],
                                   port: other)
        let revision = Int64((deleted["header"] as? [String: Any])?["revision"] as? String ?? "0") ?? 0
        try etcd.compact(revision: revision, port: other)
        try etcd.restart()
        #expect(poll(15) { Set((0..<4).compactMap { _ in backendOf(pa) }) == ["c"] },
                "after compaction the node re-read everything: c added, b drained")
        #expect(try fleetMetrics(a).contains("sluice_registry_connected 1"))
    }
}
