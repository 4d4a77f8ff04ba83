import Foundation
import SluiceConfig
import SluiceControlPlane
import SluiceProxy
import Synchronization
import Testing

/// A change's events are told before any later change's: the ids the event bus gives (and the
/// order event rules deliver in, SPEC §13) follow the order of the changes. And what is told
/// about fail-open concerns only groups that serve.
@Suite struct EventOrderTests {
    /// Publishes nothing: every version is adopted at once, so drained targets leave at the
    /// next tick.
    final class InstantDataPlane: DataPlane {
        let version = Atomic<UInt64>(0)
        func publish(_ plan: Plan) throws(Runtime.BindError) -> UInt64 { version.add(1, ordering: .relaxed).newValue }
        func setWeights(_ weights: [[Int]], of plan: Plan) -> UInt64? { version.add(1, ordering: .relaxed).newValue }
        func evict() {}
        func requestStop() {}
        var routingVersion: UInt64 { version.load(ordering: .relaxed) }
        func allWorkersAdopted(_ version: UInt64) -> Bool { true }
    }

    @Test func aDeregistrationIsToldBeforeItsTargetDrains() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - { name: web, protocol: http, bind: "127.0.0.1:18080", default: { forward: app } }
            target_groups:
              - { name: app, protocol: http, health_check: off, targets: [] }
            """, file: "test.yaml")
        let told = Mutex<[String]>([])
        // A slow event sink (an outbox's fsync, say) widens the window between a change and
        // its event, where the tick could otherwise slip the target's `drained` in first.
        let control = ControlPlane(config: config, registrations: [], persist: { _ in }, onEvent: { e in
            if e.type == "deregistration" { usleep(100_000) }
            told.withLock { $0.append("\(e.type) \(e.target ?? "")") }
        })
        control.attach(InstantDataPlane())
        _ = try control.makePlan()
        _ = try control.register(group: "app", address: "127.0.0.1:1", zone: nil, weight: nil, now: "t")
        let ticking = Atomic<Bool>(true)
        let ticker = Thread {
            while ticking.load(ordering: .relaxed) {
                control.tick()
                usleep(1_000)
            }
        }
        ticker.start()
        defer { ticking.store(false, ordering: .relaxed) }
        _ = try control.deregister(group: "app", address: "127.0.0.1:1", wait: false, timeout: nil)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && !told.withLock({ $0.contains("drained 127.0.0.1:1") }) { usleep(5_000) }
        let order = told.withLock { $0 }
        let dereg = order.firstIndex(of: "deregistration 127.0.0.1:1")
        let drained = order.firstIndex(of: "drained 127.0.0.1:1")
        #expect(dereg != nil && drained != nil, "\(order)")
        if let dereg, let drained { #expect(dereg < drained, "\(order)") }
    }

    @Test func onlyAGroupThatServesFailsOpen() throws {
        // Both groups' only target is still `initial` (no check has passed): fewer healthy than
        // min_healthy. `app` serves the listener and fails open; `spare` serves nothing.
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - { name: web, protocol: http, bind: "127.0.0.1:18080", default: { forward: app } }
            target_groups:
              - { name: app, protocol: http, health_check: { protocol: tcp, interval: 10s, timeout: 1s }, targets: [{ address: "127.0.0.1:1" }] }
              - { name: spare, protocol: http, health_check: { protocol: tcp, interval: 10s, timeout: 1s }, targets: [{ address: "127.0.0.1:2" }] }
            """, file: "test.yaml")
        let control = ControlPlane(config: config, registrations: [], persist: { _ in }, onEvent: { _ in })
        control.attach(InstantDataPlane())
        _ = try control.makePlan()
        let views = Dictionary(uniqueKeysWithValues: control.groupViews().map { ($0.name, $0) })
        #expect(views["app"]?.failOpen == true)
        #expect(views["spare"]?.failOpen == false, "a group no listener uses never fails open")
        #expect(views["spare"]?.targets.first?.state == "unused")
    }
}
