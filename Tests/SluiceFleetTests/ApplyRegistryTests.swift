import SluiceConfig
import SluiceControlPlane
import Synchronization
import Testing

/// `ControlPlane.applyRegistry`: the registered targets of every group become exactly the
/// registry's, idempotently, persisted; static targets stay.
@Suite struct ApplyRegistryTests {
    static let yaml = """
        node: { zone: zone-a }
        listeners:
          - { name: web, protocol: http, bind: "127.0.0.1:18080", default: { forward: app } }
        target_groups:
          - name: app
            protocol: http
            health_check: off
            targets:
              - { address: "127.0.0.1:9000" }
        """

    final class Recorder: Sendable {
        let events = Mutex<[String]>([])
        let saved = Mutex<[[ControlPlane.Registration]]>([])
        func take() -> [String] { events.withLock { e in defer { e.removeAll() }; return e } }
    }

    func make() throws -> (ControlPlane, Recorder) {
        let config = try ConfigLoader.parse(yaml: Self.yaml, file: "test.yaml")
        let r = Recorder()
        let control = ControlPlane(config: config, registrations: [], persist: { regs in r.saved.withLock { $0.append(regs) } },
                                   onEvent: { e in r.events.withLock { $0.append("\(e.type) \(e.target ?? "")") } })
        return (control, r)
    }

    func reg(_ address: String, weight: Int = 1, zone: String = "zone-b") -> ControlPlane.Registration {
        ControlPlane.Registration(group: "app", address: address, zone: zone, weight: weight, registeredAt: "t")
    }

    func registered(_ control: ControlPlane) -> [String: Int] {
        var out: [String: Int] = [:]
        for t in control.groupViews()[0].targets where !t.isStatic && t.state != "draining" { out[t.address] = t.weight }
        return out
    }

    @Test func addsUpdatesAndDrains() throws {
        let (control, r) = try make()
        control.applyRegistry([reg("127.0.0.1:1"), reg("127.0.0.1:2")], draining: [])
        #expect(registered(control) == ["127.0.0.1:1": 1, "127.0.0.1:2": 1])
        #expect(r.take().sorted() == ["registration 127.0.0.1:1", "registration 127.0.0.1:2"])
        #expect(r.saved.withLock { $0.last?.map(\.address).sorted() } == ["127.0.0.1:1", "127.0.0.1:2"], "persisted")

        // The same view again changes nothing and tells nothing.
        let writes = r.saved.withLock { $0.count }
        control.applyRegistry([reg("127.0.0.1:1"), reg("127.0.0.1:2")], draining: [])
        #expect(r.take().isEmpty)
        #expect(r.saved.withLock { $0.count } == writes)

        // Weight changed, :2 gone, :3 new.
        control.applyRegistry([reg("127.0.0.1:1", weight: 5), reg("127.0.0.1:3")], draining: [])
        #expect(registered(control) == ["127.0.0.1:1": 5, "127.0.0.1:3": 1])
        #expect(r.take().sorted() == ["deregistration 127.0.0.1:2", "registration 127.0.0.1:3"])

        // Marked draining in the registry: drained here.
        control.applyRegistry([reg("127.0.0.1:1", weight: 5), reg("127.0.0.1:3")], draining: ["app|127.0.0.1:3"])
        #expect(registered(control) == ["127.0.0.1:1": 5])
        #expect(r.take() == ["deregistration 127.0.0.1:3"])
    }

    @Test func staticTargetsStayAndAreNotDuplicated() throws {
        let (control, r) = try make()
        control.applyRegistry([reg("127.0.0.1:9000", weight: 7)], draining: [])
        let targets = control.groupViews()[0].targets
        #expect(targets.map(\.address) == ["127.0.0.1:9000"])
        #expect(targets[0].isStatic && targets[0].weight == 1, "the file owns it")
        #expect(r.take().isEmpty)
        control.applyRegistry([], draining: [])
        #expect(control.groupViews()[0].targets.map(\.address) == ["127.0.0.1:9000"])
    }

    @Test func checkRefusesAsTheAPIDoes() throws {
        let (control, _) = try make()
        #expect(throws: ControlPlane.Refusal.self) { try control.check(group: "nope", address: "127.0.0.1:1", zone: nil, weight: nil) }
        #expect(throws: ControlPlane.Refusal.self) { try control.check(group: "app", address: "x", zone: nil, weight: nil) }
        #expect(throws: ControlPlane.Refusal.self) { try control.check(group: "app", address: "127.0.0.1:1", zone: nil, weight: 1000) }
        let c = try control.check(group: "app", address: "127.0.0.1:9000", zone: nil, weight: nil)
        #expect(c.isStatic && c.zone == "zone-a" && c.weight == 1)
    }
}
