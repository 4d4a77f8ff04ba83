import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Inputs that used to kill the daemon (reproduced on 18b7a22), each kept as a regression
/// test against the real binary.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct RobustnessTests {
    /// A `prefer_local` group config with one target in the node's zone and `remote` in zone-b.
    func preferLocalConfig(port: UInt16, local: UInt16, remote: [UInt16], weights: [Int] = []) -> String {
        var lines = [
            "node: { zone: zone-a, workers: 1, shutdown_grace: 5s }",
            "listeners:",
            "  - { name: web, protocol: http, bind: \"127.0.0.1:\(port)\", access_log: off, default: { forward: app } }",
            "target_groups:",
            "  - name: app",
            "    protocol: http",
            "    cross_zone: prefer_local",
            "    health_check: off",
            "    targets:",
            "      - { address: \"127.0.0.1:\(local)\", zone: zone-a }",
        ]
        for (i, p) in remote.enumerated() {
            let w = i < weights.count ? ", weight: \(weights[i])" : ""
            lines.append("      - { address: \"127.0.0.1:\(p)\", zone: zone-b\(w) }")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `prefer_local` weights above 999 trapped the balancer: one local target and four
    /// remote ones, all healthy; then an API registration in zone-b with weight 4, which was
    /// persisted before the crash (a crash loop at every restart).
    @Test func preferLocalWeightsStayInRange() throws {
        let local = try HTTPBackend(name: "local")
        let remote = try (0..<4).map { try HTTPBackend(name: "r\($0)") }
        let extra = try HTTPBackend(name: "extra")
        let port = try TestSocket.freePort()
        let yaml = preferLocalConfig(port: port, local: local.port, remote: remote.map(\.port))
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        var seen = Set<String>()
        for _ in 0..<40 { seen.insert(try get(port, "/").json["backend"] as? String ?? "?") }
        #expect(d.isRunning)
        #expect(seen.contains("local") && seen.count > 1, "in-zone first, the rest spills: \(seen)")
        let reg = try runTool("/usr/bin/curl", ["-s", "--unix-socket", d.controlSocket, "-X", "POST",
                                                "-d", "{\"address\": \"127.0.0.1:\(extra.port)\", \"zone\": \"zone-b\", \"weight\": 4}",
                                                "http://sluice/v1/target-groups/app/targets"])
        #expect(reg.output.contains("127.0.0.1:\(extra.port)"), "\(reg.output)")
        for _ in 0..<20 { #expect(try get(port, "/").status == 200) }
        #expect(d.isRunning, "the daemon survives the registration")
        // And starts again on the state file it wrote.
        d.send(signal: SIGTERM)
        #expect(d.waitForExit(seconds: 10) == 0)
        let state = try String(contentsOfFile: d.statePath, encoding: .utf8)
        let again = try SluicedProcess(yaml: yaml + "control:\n  socket: \(d.directory.path)/control2.sock\n  state: \(d.statePath)\n")
        defer { again.terminate() }
        #expect(try get(port, "/").status == 200, "restarted on \(state)")
    }

    /// Remote weights 1 and 3 while the local target is down (its checks answer 500).
    @Test func preferLocalWithAFailingLocalTarget() throws {
        let local = try HTTPBackend(name: "local")
        let remote = try (0..<2).map { try HTTPBackend(name: "r\($0)") }
        let port = try TestSocket.freePort()
        let yaml = preferLocalConfig(port: port, local: local.port, remote: remote.map(\.port), weights: [1, 3])
            .replacingOccurrences(of: "health_check: off",
                                  with: "health_check: { protocol: http, path: /status/500, interval: 100ms, timeout: 50ms }")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        try waitUntil("local unhealthy") { (try? targetStates(d, group: "app"))?["127.0.0.1:\(local.port)"] == "unhealthy" }
        #expect(d.isRunning)
    }

    /// A state file with a registration of weight 5000 refuses the start with a message
    /// naming it, instead of trapping; `--reset-state` starts without it.
    @Test func aStateFileWithAnOutOfRangeWeightIsRefused() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = dir.appendingPathComponent("state.json").path
        try """
        {"version": 1, "registrations": [{"address": "127.0.0.1:\(a.port)", "group": "app", "registered_at": "2026-01-01T00:00:00Z", "weight": 5000}]}
        """.write(toFile: state, atomically: true, encoding: .utf8)
        let yaml = httpConfig(port: port, groups: [("app", [])]) + "control:\n  socket: \(dir.path)/control.sock\n  state: \(state)\n"
        let config = dir.appendingPathComponent("sluice.yaml").path
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let refused = try SluicedProcess.run(["--config", config])
        #expect(refused.status == 1)
        #expect(refused.output.contains("weight must be 0..999, got 5000"), "\(refused.output)")
        #expect(!refused.output.contains("Fatal error"), "\(refused.output)")
        let d = try SluicedProcess(yaml: yaml, arguments: ["--reset-state"])
        defer { d.terminate() }
        #expect(d.log.contains("5000"), "the dropped registration is logged: \(d.log)")
    }

    /// `WATCHDOG_USEC` of 5e12 (WatchdogSec of about two months) trapped on `Int32(...)`.
    @Test func aHugeWatchdogIntervalIsAccepted() throws {
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [9])]),
                                   environment: ["WATCHDOG_USEC": "5000000000000"])
        defer { d.terminate() }
        d.send(signal: SIGHUP)  // a turn of the control loop with the watchdog armed
        #expect(try ctl(d, ["status"]).status == 0)
        #expect(d.isRunning)
    }

    /// stderr that fails (`2>/dev/full`): the first log line trapped in `FileHandle.write`.
    @Test func aFailingStderrDoesNotKillTheDaemon() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let notify = try NotifySocket()
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { throw TestSocket.Failure("no /dev/full") }
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]), waitForReady: false,
                                   environment: ["NOTIFY_SOCKET": notify.path], stderr: full)
        defer { d.terminate() }
        #expect(notify.wait(for: "READY=1"), "ready although every log line failed")
        d.send(signal: SIGHUP)  // logs "reloading" and the reload event
        #expect(notify.wait(for: "READY=1"), "reloaded")
        #expect(try get(port, "/").status == 200)
        #expect(d.isRunning)
    }
}
