import Foundation
import SluiceTestSupport
import Testing

/// Keep-alive GETs of `/` through the proxy on one client connection (curl reuses it);
/// returns the backend name of each answer.
func keepAliveBackends(_ port: UInt16, count: Int) throws -> [String] {
    let urls = Array(repeating: "http://127.0.0.1:\(port)/", count: count)
    let r = try runTool("/usr/bin/curl", ["-s", "--max-time", "20", "-H", "Connection: keep-alive"] + urls)
    // Each answer is a JSON object naming its backend.
    return r.output.components(separatedBy: "\"backend\": \"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
}

/// Weight changes (health, slow start, draining) are applied to the running pickers in
/// place: pooled target connections survive them.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct WeightChangeTests {
    /// Slow start at the default weight 1 ramps in finer units than the weight (a weight-1
    /// target used to get its full share at once), and its steps, every 100 ms, no longer
    /// close the pooled target connections.
    @Test func slowStartRampsWeightOneAndKeepsPooledConnections() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        // Checks go to their own port, so the targets' accept counts are traffic only.
        let checks = try HTTPBackend(name: "checks")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])], group: [
            "slow_start: 30s",
            "health_check: { protocol: http, path: /, port: \(checks.port), interval: 100ms, timeout: 50ms, healthy_threshold: 1, unhealthy_threshold: 2 }",
        ]))
        defer { d.terminate() }
        try waitUntil("a healthy") { (try? targetStates(d, group: "app"))?["127.0.0.1:\(a.port)"] == "healthy" }
        let reg = try ctl(d, ["targets", "register", "app", "127.0.0.1:\(b.port)"])
        #expect(reg.status == 0, "\(reg.output)")
        try waitUntil("b healthy") { (try? targetStates(d, group: "app"))?["127.0.0.1:\(b.port)"] == "healthy" }
        // Warm the pools of both targets (b may need a few requests at 10 %).
        var warm = 0
        while warm < 20, try keepAliveBackends(port, count: 50).contains("b") == false { warm += 1 }
        let before = try a.acceptedConnections() + b.acceptedConnections()
        var answers: [String] = []
        for _ in 0..<10 { answers += try keepAliveBackends(port, count: 60) }
        let after = try a.acceptedConnections() + b.acceptedConnections()
        #expect(answers.count == 600, "every request answered")
        let share = Double(answers.filter { $0 == "b" }.count) / Double(max(1, answers.count))
        #expect(share > 0 && share < 0.3, "b ramps from 10 %, not 50 % at once: \(share)")
        // Over ~10 slow-start steps: at most one new connection per target (a request that
        // found the pool busy), not one per step.
        #expect(after - before <= 2, "new target connections during slow start: \(after - before)")
    }
}

/// Passive checks (SPEC §4): traffic that fails ejects a target even while its active checks
/// pass; it comes back after its back-off.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct PassiveCheckTests {
    @Test func fiveHundredsInARowEjectATargetWhoseChecksPass() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b", failing: true)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port, b.port])], group: [
            "health_check: { protocol: http, path: /healthz, interval: 100ms, timeout: 50ms, healthy_threshold: 1, unhealthy_threshold: 2 }",
        ]))
        defer { d.terminate() }
        try waitUntil("both healthy") { (try? targetStates(d, group: "app"))?.values.allSatisfy { $0 == "healthy" } == true }
        var codes: [Int] = []
        for _ in 0..<12 { codes.append(try get(port, "/").status) }
        #expect(codes.filter { $0 == 500 }.count >= 3, "b answered 500 until ejected: \(codes)")
        try waitUntil("b ejected") { (try? targetStates(d, group: "app"))?["127.0.0.1:\(b.port)"] == "unhealthy" }
        let list = try ctl(d, ["targets", "list", "app", "--json"])
        #expect(list.output.contains("Target.OutlierEjected") || list.output.contains("OutlierEjected"), "\(list.output)")
        for _ in 0..<10 { #expect(try get(port, "/").status == 200, "only a gets traffic while b is ejected") }
        // The first back-off is 5 s; its checks still pass, so it comes back.
        let deadline = Date().addingTimeInterval(9)
        var back = false
        while !back && Date() < deadline {
            back = (try? targetStates(d, group: "app"))?["127.0.0.1:\(b.port)"] == "healthy"
            if !back { usleep(100_000) }
        }
        #expect(back, "b returns after its back-off")
    }
}
