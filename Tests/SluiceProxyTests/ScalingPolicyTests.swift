import Foundation
import SluiceConfig
import SluiceControlPlane
import Testing

private let s: UInt64 = 1_000_000_000

/// The pure decisions of managed groups (SPEC §11).
@Suite struct ScalingPlannerTests {
    let tracking = TargetTracking(metric: .requestsPerTargetPerSecond, target: 200, window: 60 * s)

    func inputs(desired: Int, actual: Int, metric: Double?, queue: Int = 0, last: UInt64? = nil, now: UInt64) -> ScalingPlanner.Inputs {
        ScalingPlanner.Inputs(desired: desired, actual: actual, min: 1, max: 20, metric: metric, queueLength: queue,
                              lastActivity: last, now: now)
    }

    @Test func scaleOutIsCeilOfCurrentTimesMetricOverTargetAtOnce() {
        var p = ScalingPlanner(tracking: tracking, cooldown: 60 * s)
        let d = p.decide(inputs(desired: 4, actual: 4, metric: 412, now: 1_000 * s))
        // ceil(4 × 412 / 200) = ceil(8.24) = 9
        #expect(d == .init(desired: 9, cause: "target tracking: 412 req/s per target > 200"))
    }

    @Test func scaleOutWaitsForTheCooldownAndIsClamped() {
        var p = ScalingPlanner(tracking: tracking, cooldown: 60 * s)
        #expect(p.decide(inputs(desired: 4, actual: 4, metric: 412, last: 990 * s, now: 1_000 * s)) == nil)
        #expect(p.decide(inputs(desired: 4, actual: 4, metric: 412, last: 990 * s, now: 1_050 * s))?.desired == 9)
        #expect(p.decide(inputs(desired: 4, actual: 4, metric: 1e9, now: 2_000 * s))?.desired == 20)
        #expect(p.decide(inputs(desired: 4, actual: 4, metric: .infinity, now: 2_000 * s)) == nil)
    }

    @Test func scaleInOnlyAfterAWholeWindowLowByTenPercentAStep() {
        var p = ScalingPlanner(tracking: tracking, cooldown: 10 * s)
        let t0 = 1_000 * s
        // 20 targets at 20 req/s: 2 would do, but not before the window.
        #expect(p.decide(inputs(desired: 20, actual: 20, metric: 20, now: t0)) == nil)
        #expect(p.decide(inputs(desired: 20, actual: 20, metric: 20, now: t0 + 59 * s)) == nil)
        let d = p.decide(inputs(desired: 20, actual: 20, metric: 20, now: t0 + 60 * s))
        #expect(d == .init(desired: 18, cause: "target tracking: 20 req/s per target < 200"))
        // One step per cooldown.
        #expect(p.decide(inputs(desired: 18, actual: 18, metric: 20, last: t0 + 61 * s, now: t0 + 65 * s)) == nil)
        #expect(p.decide(inputs(desired: 18, actual: 18, metric: 20, last: t0 + 61 * s, now: t0 + 71 * s))?.desired == 17)
        // Small groups step by one; never below min.
        #expect(p.decide(inputs(desired: 2, actual: 2, metric: 1, now: t0 + 200 * s))?.desired == 1)
        #expect(p.decide(inputs(desired: 1, actual: 1, metric: 1, now: t0 + 300 * s)) == nil)
    }

    @Test func aHighSampleRestartsTheWindow() {
        var p = ScalingPlanner(tracking: tracking, cooldown: 0)
        let t0 = 1_000 * s
        _ = p.decide(inputs(desired: 10, actual: 10, metric: 20, now: t0))
        _ = p.decide(inputs(desired: 10, actual: 10, metric: 200, now: t0 + 30 * s))  // at target: not low
        #expect(p.decide(inputs(desired: 10, actual: 10, metric: 20, now: t0 + 40 * s)) == nil)
        #expect(p.decide(inputs(desired: 10, actual: 10, metric: 20, now: t0 + 99 * s)) == nil)
        #expect(p.decide(inputs(desired: 10, actual: 10, metric: 20, now: t0 + 100 * s))?.desired == 9)
    }

    @Test func aSurgeQueueIsPressure() {
        var p = ScalingPlanner(tracking: tracking, cooldown: 60 * s)
        // With targets: at least one more (after the cooldown), and no scale-in.
        #expect(p.decide(inputs(desired: 3, actual: 3, metric: 10, queue: 5, now: 1_000 * s))
                == .init(desired: 4, cause: "surge queue: 5 waiting"))
        #expect(p.decide(inputs(desired: 3, actual: 3, metric: 10, queue: 5, last: 999 * s, now: 1_000 * s)) == nil)
        for i in 0..<100 {
            #expect(p.decide(inputs(desired: 4, actual: 4, metric: 1, queue: 1, last: 0, now: 2_000 * s + UInt64(i) * s))?.desired != 3)
        }
    }

    @Test func scaleFromZeroWithOrWithoutTracking() {
        var p = ScalingPlanner(tracking: nil, cooldown: 60 * s)
        let zero = ScalingPlanner.Inputs(desired: 0, actual: 0, min: 0, max: 5, queueLength: 2, lastActivity: 999 * s, now: 1_000 * s)
        #expect(p.decide(zero) == .init(desired: 1, cause: "surge queue: 2 waiting, no targets"))
        var launching = zero
        launching.desired = 1
        #expect(p.decide(launching) == nil, "a launch is under way already")
        var empty = zero
        empty.queueLength = 0
        #expect(p.decide(empty) == nil)
        var none = zero
        none.max = 0
        #expect(p.decide(none) == nil, "max 0 keeps the group empty")
    }

    @Test func inFlightMetricCause() {
        var p = ScalingPlanner(tracking: TargetTracking(metric: .inFlightPerTarget, target: 10), cooldown: 0)
        #expect(p.decide(inputs(desired: 2, actual: 2, metric: 12.5, now: 1_000 * s))
                == .init(desired: 3, cause: "target tracking: 12.5 in flight per target > 10"))
    }
}

@Suite struct TerminationChoiceTests {
    typealias C = TerminationChoice.Candidate

    @Test func unhealthyFirst() {
        let t = [C(address: "a", zone: "z1", order: 0), C(address: "b", zone: "z1", unhealthy: true, order: 1),
                 C(address: "c", zone: "z2", order: 2)]
        #expect(TerminationChoice.pick(t) == 1)
    }

    @Test func thenTheFullestZoneThenTheEarliest() {
        let t = [C(address: "a", zone: "z1", order: 0), C(address: "b", zone: "z2", order: 1),
                 C(address: "c", zone: "z2", order: 2), C(address: "d", zone: "z1", draining: true, order: 3)]
        #expect(TerminationChoice.pick(t) == 1)
        let tie = [C(address: "a", zone: "z2", order: 5), C(address: "b", zone: "z1", order: 1),
                   C(address: "c", zone: "z1", order: 0), C(address: "d", zone: "z2", order: 2)]
        #expect(TerminationChoice.pick(tie) == 2, "tie between zones: name order, then the earliest")
    }

    @Test func neverStaticNorDraining() {
        let t = [C(address: "a", zone: "z1", unhealthy: true, isStatic: true, order: 0),
                 C(address: "b", zone: "z1", draining: true, order: 1), C(address: "c", zone: "z2", order: 2)]
        #expect(TerminationChoice.pick(t) == 2)
        #expect(TerminationChoice.pick([C(address: "a", zone: "z", isStatic: true, order: 0)]) == nil)
        #expect(TerminationChoice.pick([]) == nil)
    }
}

@Suite struct LaunchZoneTests {
    @Test func fewestTargetsWins() {
        #expect(LaunchZone.pick(nodeZone: "a", targetZones: ["a", "a", "b"]) == "b")
        #expect(LaunchZone.pick(nodeZone: "a", targetZones: ["a", "b"]) == "a", "tie: the node's zone")
        #expect(LaunchZone.pick(nodeZone: "a", targetZones: ["a", "c", "b"], nodeZones: ["d"]) == "d")
        #expect(LaunchZone.pick(nodeZone: "z", targetZones: ["z", "z", "c", "b"]) == "b", "tie without the node's zone: name order")
        #expect(LaunchZone.pick(nodeZone: "a", targetZones: []) == "a")
    }
}

@Suite struct LaunchBackoffTests {
    @Test func oneSecondDoublingToThirty() {
        #expect((0...8).map { LaunchBackoff.delay(afterFailures: $0) / s } == [0, 1, 2, 4, 8, 16, 30, 30, 30])
        #expect(LaunchBackoff.delay(afterFailures: Int.max) == 30 * s)
    }
}

@Suite struct HookOutputTests {
    func parse(_ text: String) -> Result<HookOutput.Answer, HookOutputError> { HookOutput.parse(Array(text.utf8)) }

    @Test func addressAndOptionalZone() throws {
        #expect(try parse("10.0.0.5:8080\n").get() == .init(address: "10.0.0.5:8080", zone: nil))
        #expect(try parse("10.0.0.5:8080 zone-b\r\nmore lines\n").get() == .init(address: "10.0.0.5:8080", zone: "zone-b"))
        #expect(try parse("  [::1]:80\tz\n").get() == .init(address: "[::1]:80", zone: "z"))
        #expect(try parse("127.0.0.1:9").get().address == "127.0.0.1:9", "no newline at the end")
    }

    @Test func hostileOutputIsRefusedWithoutTraps() {
        for bad in ["", "\n", "hello\n", "1.2.3.4:99999\n", "0.0.0.0:80\n", "1.2.3.4:80 a b\n", "1.2.3.4:80 \u{7f}\n",
                    "1.2.3.4:80 " + String(repeating: "z", count: 300) + "\n", "\u{0}\u{0}\n"] {
            guard case .failure = parse(bad) else {
                Issue.record("accepted \(bad.debugDescription)")
                continue
            }
        }
        // Megabytes without a newline: only the bounded prefix is looked at.
        let huge = [UInt8](repeating: UInt8(ascii: "9"), count: 1 << 20)
        guard case .failure = HookOutput.parse(huge) else {
            Issue.record("accepted a huge line")
            return
        }
        for _ in 0..<500 {
            _ = HookOutput.parse((0..<Int.random(in: 0..<64)).map { _ in UInt8.random(in: 0...255) })
        }
    }
}

/// `HookRunner` with real processes: exit codes, bounded output, a clean environment, the
/// timeout killing the whole process group.
@Suite(.timeLimit(.minutes(10)))
struct HookRunnerTests {
    func script(_ body: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-hookrunner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("hook").path
        try ("#!/bin/bash\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    @Test func outputExitAndEnvironment() throws {
        let path = try script("echo \"127.0.0.1:$PORT_X $SLUICE_ZONE\"; echo oops >&2; [ -z \"$HOME\" ] || exit 9; exit 0")
        let o = HookRunner.run(path, environment: ["PORT_X": "81", "SLUICE_ZONE": "z"], timeout: 5 * s)
        #expect(o.succeeded)
        #expect(String(decoding: o.stdout, as: UTF8.self) == "127.0.0.1:81 z\n")
        #expect(String(decoding: o.stderr, as: UTF8.self) == "oops\n")
        let fail = HookRunner.run(try script("exit 3"), environment: [:], timeout: 5 * s)
        #expect(fail.exitCode == 3 && !fail.succeeded && fail.failureText == "exit status 3")
        let missing = HookRunner.run("/nonexistent/hook", environment: [:], timeout: s)
        #expect(missing.spawnError != nil && !missing.succeeded)
    }

    @Test func outputIsBounded() throws {
        let o = HookRunner.run(try script("head -c 1000000 /dev/zero | tr '\\0' x; head -c 100000 /dev/zero >&2"),
                               environment: [:], timeout: 10 * s)
        #expect(o.succeeded)
        #expect(o.stdout.count == HookOutput.maxBytes)
        #expect(o.stderr.count == HookRunner.maxStderr)
    }

    @Test func theTimeoutKillsTheProcessGroup() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-hookrunner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let pidFile = dir.appendingPathComponent("child").path
        let path = try script("sleep 30 & echo $! > \(pidFile); wait")
        let start = Date()
        let o = HookRunner.run(path, environment: [:], timeout: 300_000_000)
        #expect(o.timedOut && !o.succeeded)
        #expect(Date().timeIntervalSince(start) < 5)
        let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        #expect(pid > 0)
        // The grandchild went with the group (a zombie reaped by init at worst: poll briefly).
        let deadline = Date().addingTimeInterval(5)
        var alive = true
        while alive && Date() < deadline {
            alive = kill(pid, 0) == 0 && !((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
            if alive { usleep(20_000) }
        }
        #expect(!alive)
    }

    @Test func aDaemonTheHookLeavesBehindDoesNotHoldItUp() throws {
        let o = HookRunner.run(try script("sleep 20 & echo 127.0.0.1:1"), environment: [:], timeout: 10 * s)
        #expect(o.succeeded)
        #expect(String(decoding: o.stdout, as: UTF8.self).hasPrefix("127.0.0.1:1"))
    }
}
