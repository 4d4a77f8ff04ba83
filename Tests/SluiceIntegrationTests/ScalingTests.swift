import Foundation
import SluiceTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Managed groups (SPEC §11) with the real daemon, real hooks and real HTTP targets.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct ScalingTests {
    @Test func maintainLaunchesToDesiredAndTheTargetsServe() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 0", "max: 4", "desired: 2"]))
        defer { d.terminate() }
        #expect(try poll(20) { try healthyTargets(d).count == 2 }, "targets: \((try? targetStates(d, group: "app")) ?? [:])")
        let running = hooks.running
        #expect(running.count == 2)
        // Both targets answer through the balancer.
        var seen = Set<String>()
        _ = poll(10) {
            if let body = curl(port) { seen.insert(body.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return seen.count == 2
        }
        #expect(seen == Set(running.keys.map { "ok " + ($0.split(separator: ":").last.map(String.init) ?? "") }))
        let state = try scalingState(d)
        #expect(state["desired"] as? Int == 2)
        #expect(state["actual"] as? Int == 2)
        #expect(state["min"] as? Int == 0 && state["max"] as? Int == 4)
        let launches = try activities(d).filter { $0["kind"] as? String == "launch" }
        #expect(launches.count == 2)
        #expect(launches.allSatisfy { $0["result"] as? String == "successful" && $0["end_time"] is String })
        // The hook saw its environment: the group, a zone and the activity's id.
        let log = hooks.lines("launch.log")
        #expect(log.count == 2)
        #expect(log.allSatisfy { $0.hasPrefix("group=app zone=default activity=") && !$0.hasSuffix("activity=") })
        // The human table.
        let table = try ctl(d, ["scaling"])
        #expect(table.status == 0)
        #expect(table.output.contains("GROUP") && table.output.contains("app"))
    }

    @Test func scaleOutAndInDrainingFirstAndOutOfRangeIsRefused() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 1", "max: 3", "desired: 1"]))
        defer { d.terminate() }
        #expect(try poll(20) { try healthyTargets(d).count == 1 })
        let out = try ctl(d, ["scale", "app", "3"])
        #expect(out.status == 0, "\(out.output)")
        #expect(out.output.contains("desired 3"))
        #expect(try poll(30) { try healthyTargets(d).count == 3 }, "targets: \((try? targetStates(d, group: "app")) ?? [:])")
        let before = Set(try liveTargets(d))
        #expect(try ctl(d, ["scale", "app", "1"]).status == 0)
        #expect(try poll(30) { try liveTargets(d).count == 1 && hooks.lines("terminate.log").count == 2 })
        #expect(poll(10) { hooks.running.count == 1 })
        // The terminate hook got SLUICE_TARGET for targets that were registered, now gone.
        let terminated = hooks.lines("terminate.log").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("target=") }.map { String($0.dropFirst(7)) }
        }
        #expect(terminated.count == 2)
        #expect(Set(terminated).isSubset(of: before))
        #expect(Set(terminated).isDisjoint(with: Set(try targetStates(d, group: "app").keys)))
        let ends = try activities(d).filter { $0["kind"] as? String == "terminate" && $0["result"] as? String == "successful" }
        #expect(ends.count == 2)
        #expect(ends.allSatisfy { ($0["message"] as? String ?? "").hasPrefix("drained and terminated") && $0["cause"] as? String == "manual" })
        // The survivor still serves.
        #expect(curl(port)?.hasPrefix("ok ") == true)
        // Out of range: refused with exit 1, naming min and max.
        let refused = try ctl(d, ["scale", "app", "9"])
        #expect(refused.status == 1)
        #expect(refused.output.contains("min 1") && refused.output.contains("max 3"), "\(refused.output)")
        #expect(try scalingState(d)["desired"] as? Int == 1)
        // An unknown group is 404-like (exit 1), as is a group without scaling.
        #expect(try ctl(d, ["scale", "nope", "1"]).status == 1)
    }

    @Test func aFailingLaunchIsRetriedWithBackoffEachAttemptAnActivity() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        hooks.set("fail", true)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 0", "max: 2", "desired: 1"]))
        defer { d.terminate() }
        #expect(poll(10) { hooks.lines("launch.log").count >= 1 })
        let first = Date()
        #expect(poll(15) { hooks.lines("launch.log").count >= 3 })
        // Back-off 1 s then 2 s: the third attempt comes about 3 s after the first.
        let elapsed = Date().timeIntervalSince(first)
        #expect(elapsed >= 2.5, "three attempts in \(elapsed) s: no back-off")
        let failed = try activities(d).filter { $0["kind"] as? String == "launch" && $0["result"] as? String == "failed" }
        #expect(failed.count >= 2)
        #expect(failed.allSatisfy { ($0["message"] as? String ?? "").contains("exit status 3") })
        // The hook's stderr reaches the daemon's log.
        #expect(poll(5) { d.log.contains("failing on purpose") })
        hooks.set("fail", false)
        #expect(try poll(40) { try healthyTargets(d).count == 1 })
        #expect(try activities(d).last { $0["kind"] as? String == "launch" }?["result"] as? String == "successful")
    }

    @Test func aHookRunningPastItsTimeoutIsKilled() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        hooks.set("slow", true)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 0", "max: 2", "desired: 1", "hook_timeout: 1s"]))
        defer { d.terminate() }
        #expect(try poll(10) {
            try activities(d).contains { ($0["message"] as? String ?? "").contains("launch hook timed out after 1s") }
        })
        // The whole process group went: no `sleep 60` of the hook is left.
        let sleeps = try runTool("/usr/bin/pgrep", ["-f", "-x", "sleep 60"])
        #expect(sleeps.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "left over: \(sleeps.output)")
        hooks.set("slow", false)
        #expect(try poll(20) { try healthyTargets(d).count == 1 })
    }

    @Test func aTargetUnhealthyTooLongIsReplaced() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 0", "max: 3", "desired: 2",
                                                                            "replace_unhealthy_after: 1s"]))
        defer { d.terminate() }
        #expect(try poll(20) { try healthyTargets(d).count == 2 })
        let victim = try #require(hooks.running.keys.sorted().first)
        hooks.crash(victim)
        #expect(try poll(30) {
            let healthy = try healthyTargets(d)
            return healthy.count == 2 && !healthy.contains(victim)
        }, "targets: \((try? targetStates(d, group: "app")) ?? [:])")
        let replaced = try activities(d).first { $0["cause"] as? String == "unhealthy for 1s" }
        #expect(replaced?["target"] as? String == victim)
        #expect(replaced?["kind"] as? String == "terminate")
        let relaunch = try activities(d).last { $0["kind"] as? String == "launch" && $0["result"] as? String == "successful" }
        #expect(relaunch?["cause"] as? String == "unhealthy for 1s", "the replacement's launch carries its cause")
        #expect(hooks.lines("terminate.log").contains { $0.contains("target=\(victim)") })
        #expect(try scalingState(d)["desired"] as? Int == 2)
    }

    @Test func targetTrackingScalesOutUnderLoadAndInAfterTheWindow() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: [
            "min: 1", "max: 3", "desired: 1", "cooldown: 1s",
            "target_tracking: { metric: requests_per_target_per_second, target: 5, window: 10s }",
        ]))
        defer { d.terminate() }
        #expect(try poll(20) { try healthyTargets(d).count == 1 })
        let stop = Atomic<Bool>(false)
        let load = Thread {
            while !stop.load(ordering: .relaxed) {
                _ = try? get(port, "/")
                usleep(5_000)
            }
        }
        load.start()
        defer { stop.store(true, ordering: .relaxed) }
        #expect(try poll(30) { try scalingState(d)["desired"] as? Int == 3 })
        let out = try activities(d).first { ($0["cause"] as? String ?? "").hasPrefix("target tracking:") }
        let cause = out?["cause"] as? String ?? ""
        #expect(cause.contains("req/s per target > 5"), "\(cause)")
        #expect(try poll(30) { try healthyTargets(d).count == 3 })
        stop.store(true, ordering: .relaxed)
        let quiet = Date()
        #expect(try poll(45) { try scalingState(d)["desired"] as? Int == 1 })
        #expect(Date().timeIntervalSince(quiet) >= 9, "scale-in before the window passed")
        let ins = try activities(d).filter { ($0["cause"] as? String ?? "").contains("per target < 5") }
        #expect(ins.count >= 1)
        #expect(try poll(30) { try liveTargets(d).count == 1 })
    }

    @Test func desiredSurvivesARestart() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let state = hooks.dir.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let yaml = hooks.config(port: port, scaling: ["min: 0", "max: 3", "desired: 1"])
            + "control:\n  socket: \(state.path)/control.sock\n  state: \(state.path)/state.json\n"
        var first: SluicedProcess? = try SluicedProcess(yaml: yaml)
        defer { first?.terminate() }
        func ctlAt(_ args: [String]) throws -> (status: Int32, output: String) {
            try runTool(sluicectlPath, args + ["--socket", state.path + "/control.sock"])
        }
        #expect(try ctlAt(["scale", "app", "2"]).status == 0)
        #expect(poll(20) { hooks.running.count == 2 })
        let stored = try String(contentsOfFile: state.path + "/scaling.json", encoding: .utf8)
        #expect(stored.contains("\"app\": {\"desired\": 2}"), "\(stored)")
        first?.send(signal: SIGTERM)
        #expect(first?.waitForExit(seconds: 15) == 0)
        first = nil
        let second = try SluicedProcess(yaml: yaml)
        defer { second.terminate() }
        let answer = try ctlAt(["scaling", "app", "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(answer.output.utf8)) as? [String: Any]
        #expect(obj?["desired"] as? Int == 2, "\(answer.output)")
        // Its targets were restored from the state file: nothing more is launched.
        #expect(try poll(10) {
            let text = try ctlAt(["scaling", "app", "--json"]).output
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["actual"] as? Int == 2
        })
        #expect(hooks.lines("launch.log").count == 2)
    }

    @Test func aSurgeQueueScalesFromZero() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 0", "max: 2", "desired: 0"],
                                                      group: ["max_per_target: 10", "surge_queue: { size: 16, timeout: 20s }"]))
        defer { d.terminate() }
        usleep(500_000)
        #expect(hooks.lines("launch.log").isEmpty, "nothing launched while nobody asks")
        // The first request waits in the queue while the launch hook runs, then is answered.
        let body = try runTool("/usr/bin/curl", ["-s", "-f", "-m", "25", "http://127.0.0.1:\(port)/"])
        #expect(body.status == 0 && body.output.hasPrefix("ok "), "\(body.output)")
        let cause = try activities(d).first { $0["kind"] as? String == "set_desired" }?["cause"] as? String
        #expect(cause == "surge queue: 1 waiting, no targets")
        #expect(try scalingState(d)["desired"] as? Int == 1)
    }

    @Test func activitiesAreScalingActivityEvents() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        // A second, unmanaged group: registrations there show when the stream is on.
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: ["min: 0", "max: 2", "desired: 0"])
                                       + "  - name: other\n    protocol: http\n    health_check: off\n")
        defer { d.terminate() }
        let stream = try CtlEventStream(d)
        #expect(try stream.waitUntilOn(d, group: "other"))
        #expect(try ctl(d, ["scale", "app", "1"]).status == 0)
        func events() -> [[String: Any]] { stream.events.filter { $0["type"] as? String == "scaling_activity" } }
        #expect(poll(20) { events().contains { $0["result"] as? String == "successful" && $0["target"] != nil } })
        let all = events()
        #expect(all.first?["cause"] as? String == "manual")
        #expect(all.first?["desired"] as? Int == 1)
        let launch = all.filter { $0["target"] != nil || $0["result"] as? String == "in_progress" }
        #expect(launch.first?["result"] as? String == "in_progress")
        #expect(launch.allSatisfy { $0["group"] as? String == "app" && ($0["activity"] as? String)?.isEmpty == false })
        _ = stream.interrupt()
    }
}

/// A scheduled action fires at its cron time (waits for the next minute: its own suite, so it
/// runs alongside the others).
@Suite(.timeLimit(.minutes(10)))
struct ScalingScheduleTests {
    @Test func aScheduledActionFires() throws {
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: hooks.config(port: port, scaling: [
            "min: 0", "max: 2", "desired: 0", "schedule:", "  - { cron: \"* * * * *\", desired: 1 }",
        ]))
        defer { d.terminate() }
        #expect(try poll(70) { try scalingState(d)["desired"] as? Int == 1 })
        let a = try activities(d).first { $0["kind"] as? String == "set_desired" }
        #expect(a?["cause"] as? String == "scheduled action * * * * *")
        #expect(try poll(20) { try healthyTargets(d).count == 1 })
    }
}

/// Scaling in a fleet (SPEC §10, §11): only the leader runs hooks; `scale` on another node
/// reaches it through etcd; a new leader continues from the desired count the old one stored.
@Suite(.timeLimit(.minutes(10)))
struct ScalingFleetTests {
    func nodeConfig(_ hooks: ScalingHooks, port: UInt16, etcd: EtcdProcess, name: String, desired: Int) -> String {
        var yaml = hooks.config(port: port, scaling: ["min: 0", "max: 3", "desired: \(desired)"])
        yaml = yaml.replacingOccurrences(of: "node:\n", with: "node:\n  name: \(name)\n  zone: zone-\(name)\n")
        return yaml + "registry:\n  etcd:\n    endpoints: [\"\(etcd.endpoint)\"]\n    prefix: /sluice/scaling\n"
            + "    dial_timeout: 500ms\n    lease_ttl: 2s\n"
    }

    @Test func onlyTheLeaderScalesAndASuccessorContinues() throws {
        let etcd = try EtcdProcess()
        let hooks = try ScalingHooks()
        defer { hooks.cleanUp() }
        let a = try SluicedProcess(yaml: nodeConfig(hooks, port: try TestSocket.freePort(), etcd: etcd, name: "a", desired: 1))
        defer { a.terminate() }
        let b = try SluicedProcess(yaml: nodeConfig(hooks, port: try TestSocket.freePort(), etcd: etcd, name: "b", desired: 1))
        defer { b.terminate() }
        #expect(try poll(20) { try healthyTargets(a).count == 1 && healthyTargets(b).count == 1 })
        // One launch in the whole fleet, not one per node.
        usleep(1_000_000)
        #expect(hooks.lines("launch.log").count == 1)
        // `scale` works on either node: one that does not lead hands the count to the leader
        // through etcd and shows it at once; the leader applies it (one more launch, fleet-wide).
        let onB = try ctl(b, ["scale", "app", "2"])
        #expect(onB.status == 0, "\(onB.output)")
        #expect(try scalingState(b)["desired"] as? Int == 2)
        #expect(try poll(20) { try healthyTargets(a).count == 2 && healthyTargets(b).count == 2 })
        #expect(try poll(10) { try scalingState(a)["desired"] as? Int == 2 && scalingState(b)["desired"] as? Int == 2 })
        #expect(hooks.lines("launch.log").count == 2)
        for node in [a, b] {
            let refused = try ctl(node, ["scale", "app", "9"])
            #expect(refused.status == 1 && refused.output.contains("OutOfRange"), "\(refused.output)")
        }
        // The leader is the node that ran the launches.
        let aLaunched = try activities(a).contains { $0["kind"] as? String == "launch" }
        let bLaunched = try activities(b).contains { $0["kind"] as? String == "launch" }
        #expect(aLaunched != bLaunched, "exactly one node ran launches")
        let (leader, follower) = aLaunched ? (a, b) : (b, a)
        #expect(try poll(20) { try healthyTargets(follower).count == 2 })
        let stored = try etcdCall(etcd, "/v3/kv/range", ["key": b64("/sluice/scaling/scaling/app")])
        let value = ((stored["kvs"] as? [[String: Any]])?.first?["value"] as? String).flatMap { Data(base64Encoded: $0) }
        #expect(value.map { String(decoding: $0, as: UTF8.self) } == "{\"desired\": 2}")
        // The leader dies; the survivor takes over with desired 2 (its config says 1).
        leader.send(signal: SIGKILL)
        _ = leader.waitForExit(seconds: 10)
        #expect(try poll(20) { try scalingState(follower)["desired"] as? Int == 2 }, "took over the stored count")
        #expect(try ctl(follower, ["scale", "app", "2"]).status == 0, "the survivor leads")
        #expect(try liveTargets(follower).count == 2)
        #expect(hooks.lines("terminate.log").isEmpty)
    }
}
