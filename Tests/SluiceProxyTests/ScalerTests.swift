import Foundation
import SluiceConfig
import SluiceControlPlane
import Synchronization
import Testing

/// The Scaler's loop against plain closures: a fake model of targets, hooks that answer at
/// once (or block), ticks driven by hand.
@Suite(.timeLimit(.minutes(10)))
struct ScalerTests {
    final class Model: Sendable {
        let targets = Mutex<[String: [ControlPlane.ScalingTarget]]>([:])
        let events = Mutex<[ControlPlane.Event]>([])
        let stored = Mutex<[String: Int]>([:])
        let serial = Atomic<Int>(0)
        let gate = DispatchSemaphore(value: 0)

        func environment(blocking: String? = nil) -> Scaler.Environment {
            var env = Scaler.Environment(
                register: { [self] group, address, zone in
                    targets.withLock { $0[group, default: []].append(.init(address: address, zone: zone, state: "healthy")) }
                    return true
                },
                deregisterAndWait: { [self] group, address in
                    targets.withLock { $0[group]?.removeAll { $0.address == address } }
                },
                targets: { [self] group in targets.withLock { $0[group] } })
            env.emit = { [self] e in events.withLock { $0.append(e) } }
            env.persist = { [self] d in stored.withLock { $0 = d } }
            env.runHook = { [self] _, environment, _ in
                if environment["SLUICE_GROUP"] == blocking { gate.wait() }
                var o = HookRunner.Outcome()
                o.exitCode = 0
                let n = serial.add(1, ordering: .relaxed).newValue
                o.stdout = Array("10.0.0.\(n):80\n".utf8)
                return o
            }
            return env
        }
    }

    static func config(_ groups: [(String, ScalingConfig?)]) -> Config {
        Config(node: NodeConfig(), control: ControlConfig(), listeners: [],
               targetGroups: groups.map { name, scaling in
                   var g = TargetGroupConfig(name: name, protocolKind: .http, algorithm: .roundRobin, targets: [])
                   g.scaling = scaling
                   return g
               })
    }

    static func scaling(desired: Int, max: Int = 5) -> ScalingConfig {
        ScalingConfig(min: 0, max: max, desired: desired, launch: "/bin/true", terminate: "/bin/true", cooldown: 0)
    }

    /// Ticks until `condition` holds (bounded).
    func tick(_ scaler: Scaler, until condition: () -> Bool) -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            scaler.tick()
            usleep(2_000)
        }
        return condition()
    }

    @Test func maintainLaunchesOneAtATimeAndTellsEachActivity() throws {
        let m = Model()
        m.targets.withLock { $0 = ["app": [], "plain": []] }
        let scaler = try Scaler(config: Self.config([("app", Self.scaling(desired: 3)), ("plain", nil)]), restored: [:],
                                environment: m.environment())
        defer { scaler.stop() }
        #expect(tick(scaler) { m.targets.withLock { $0["app"]?.count } == 3 && (try? scaler.view(group: "app"))?.actual == 3 })
        let view = try scaler.view(group: "app")
        #expect(view.desired == 3)
        #expect(view.activities.filter { $0.kind == .launch && $0.result == .successful }.count == 3)
        let events = m.events.withLock { $0 }
        #expect(events.allSatisfy { $0.type == "scaling_activity" && $0.group == "app" })
        #expect(events.filter { $0.result == "in_progress" }.count == 3)
        #expect(m.stored.withLock { $0 } == ["app": 3])
        // Scale in: two terminations, each drained first.
        _ = try scaler.setDesired(group: "app", desired: 1)
        #expect(tick(scaler) { m.targets.withLock { $0["app"]?.count } == 1 })
        #expect(m.targets.withLock { $0["app"]?.map(\.address) } == ["10.0.0.3:80"], "earliest registered go first")
        #expect(throws: ControlPlane.Refusal.self) { try scaler.setDesired(group: "app", desired: 6) }
        #expect((try? scaler.view(group: "plain")) == nil)
        do {
            _ = try scaler.view(group: "plain")
        } catch {
            #expect(error.code == "NotManaged" && error.status == 409)
        }
        do {
            _ = try scaler.view(group: "nope")
        } catch {
            #expect(error.code == "GroupNotFound" && error.status == 404)
        }
    }

    @Test func withoutATerminateHookScaleInOnlyDrains() throws {
        let m = Model()
        m.targets.withLock { $0 = ["app": []] }
        var scaling = Self.scaling(desired: 2)
        scaling.terminate = nil
        let hooks = Mutex<[String]>([])
        var env = m.environment()
        let launchOnly = env.runHook
        env.runHook = { path, environment, timeout in
            hooks.withLock { $0.append(environment["SLUICE_TARGET"] == nil ? "launch" : "terminate") }
            return launchOnly(path, environment, timeout)
        }
        let scaler = try Scaler(config: Self.config([("app", scaling)]), restored: [:], environment: env)
        defer { scaler.stop() }
        #expect(tick(scaler) { m.targets.withLock { $0["app"]?.count } == 2 })
        _ = try scaler.setDesired(group: "app", desired: 1)
        #expect(tick(scaler) { m.targets.withLock { $0["app"]?.count } == 1 })
        #expect(tick(scaler) { (try? scaler.view(group: "app"))?.activities.last?.result == .successful })
        #expect(hooks.withLock { $0 } == ["launch", "launch"], "no terminate hook ran")
        #expect((try scaler.view(group: "app")).activities.last?.message?.contains("no terminate hook") == true)
    }

    @Test func aSlowHookInOneGroupDoesNotDelayAnother() throws {
        let m = Model()
        m.targets.withLock { $0 = ["slow": [], "fast": []] }
        let scaler = try Scaler(config: Self.config([("slow", Self.scaling(desired: 1)), ("fast", Self.scaling(desired: 2))]),
                                restored: [:], environment: m.environment(blocking: "slow"))
        defer { scaler.stop() }
        #expect(tick(scaler) { m.targets.withLock { $0["fast"]?.count } == 2 })
        #expect(m.targets.withLock { $0["slow"]?.count } == 0)
        #expect((try scaler.view(group: "slow")).activities.last?.result == .inProgress)
        m.gate.signal()
        #expect(tick(scaler) { m.targets.withLock { $0["slow"]?.count } == 1 })
    }

    @Test func restoredDesiredIsClampedAndAReloadAppliesOrUnmanages() throws {
        let m = Model()
        m.targets.withLock { $0 = ["app": []] }
        let scaler = try Scaler(config: Self.config([("app", Self.scaling(desired: 1, max: 4))]), restored: ["app": 9],
                                environment: m.environment())
        defer { scaler.stop() }
        #expect(try scaler.view(group: "app").desired == 4)
        scaler.apply(Self.config([("app", Self.scaling(desired: 1, max: 2))]))
        #expect(try scaler.view(group: "app").desired == 2)
        let reloaded = try scaler.view(group: "app").activities.last
        #expect(reloaded?.kind == .setDesired && reloaded?.cause == "configuration reload: min 0, max 2"
            && reloaded?.description == "Setting desired from 4 to 2", "a reload's clamp is an activity")
        #expect(m.events.withLock { $0.last?.type } == "scaling_activity")
        #expect(m.stored.withLock { $0 } == ["app": 2])
        scaler.apply(Self.config([("app", nil)]))
        #expect(scaler.views().isEmpty)
        scaler.tick()
        #expect(m.targets.withLock { $0["app"]?.count } == 0, "an unmanaged group is left alone")
    }

    @Test func onlyTheLeaderScalesAndANewLeaderContinuesFromTheStoredCounts() throws {
        let m = Model()
        m.targets.withLock { $0 = ["app": []] }
        let leading = Atomic<Bool>(false)
        var env = m.environment()
        env.isLeader = { leading.load(ordering: .relaxed) }
        env.storedDesired = { ["app": 2, "gone": 7] }
        let scaler = try Scaler(config: Self.config([("app", Self.scaling(desired: 1))]), restored: [:], environment: env)
        defer { scaler.stop() }
        for _ in 0..<20 { scaler.tick() }
        #expect(m.targets.withLock { $0["app"]?.count } == 0, "a follower launches nothing")
        #expect(try scaler.view(group: "app").desired == 2, "a follower shows the count the leader stored")
        leading.store(true, ordering: .relaxed)
        #expect(tick(scaler) { m.targets.withLock { $0["app"]?.count } == 2 })
        #expect(try scaler.view(group: "app").desired == 2)
        #expect(m.stored.withLock { $0 } == ["app": 2])
    }

    @Test func aFollowerHandsManualCountsToTheLeader() throws {
        // The follower: checks the count, sends it, shows it; no activity, no launch.
        let m = Model()
        m.targets.withLock { $0 = ["app": []] }
        var env = m.environment()
        env.isLeader = { false }
        let follower = try Scaler(config: Self.config([("app", Self.scaling(desired: 0))]), restored: [:], environment: env)
        defer { follower.stop() }
        let sent = Mutex<[DesiredRequest]>([])
        #expect(try follower.request(group: "app", desired: 3) { r in sent.withLock { $0.append(r) } }.desired == 3)
        #expect(sent.withLock { $0.map(\.desired) } == [3])
        #expect(throws: ControlPlane.Refusal.self) { try follower.request(group: "app", desired: 6) { _ in Issue.record("sent") } }
        #expect(throws: ControlPlane.Refusal.self) { try follower.request(group: "nope", desired: 1) { _ in Issue.record("sent") } }
        struct Down: Error {}
        do {
            _ = try follower.request(group: "app", desired: 2) { _ in throw Down() }
            Issue.record("a registry that is down must refuse")
        } catch {
            #expect(error.status == 503 && error.code == "RegistryUnavailable")
        }
        for _ in 0..<5 { follower.tick() }
        #expect(m.events.withLock { $0.isEmpty } && m.targets.withLock { $0["app"]?.count } == 0)

        // The leader: applies what was asked (an activity caused "manual"), out of range ignored.
        let l = Model()
        l.targets.withLock { $0 = ["app": []] }
        var lenv = l.environment()
        let pending = Mutex<[DesiredRequest]>([.init(group: "app", desired: 9, node: "b"), .init(group: "app", desired: 2, node: "b")])
        lenv.takeRequests = { pending.withLock { p in defer { p.removeAll() }; return p } }
        let leader = try Scaler(config: Self.config([("app", Self.scaling(desired: 0))]), restored: [:], environment: lenv)
        defer { leader.stop() }
        #expect(tick(leader) { l.targets.withLock { $0["app"]?.count } == 2 })
        #expect(try leader.view(group: "app").desired == 2)
        #expect(try leader.view(group: "app").activities.contains { $0.kind == .setDesired && $0.cause == "manual" })
    }
}
