import Foundation
import SluiceBalancer
import SluiceConfig
import SluiceControl
import Testing

@testable import SluiceControlPlane
@testable import SluiceProxy

/// The state file is hostile input: random documents go through the loader, the admission
/// check and Plan building, and never trap or produce a weight outside the balancers' range.
@Suite struct StateFileToPlanTests {
    static let yaml = """
        node: { zone: zone-a, workers: 1 }
        listeners:
          - { name: web, protocol: http, bind: "127.0.0.1:1", default: { forward: app } }
          - { name: raw, protocol: tcp, bind: "127.0.0.1:2", default: { forward: hash } }
        target_groups:
          - { name: app, protocol: http, cross_zone: prefer_local, slow_start: 30s, health_check: off,
              targets: [ { address: "127.0.0.1:9", zone: zone-a } ] }
          - { name: hash, protocol: tcp, algorithm: flow_hash, cross_zone: prefer_local, health_check: off, targets: [] }

        """

    @Test func randomStateFilesNeverTrapOrLeaveTheWeightRange() throws {
        let config = try ConfigLoader.parse(yaml: Self.yaml, file: "test.yaml")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var rng = SystemRandomNumberGenerator()
        let weights = ["-1", "0", "1", "4", "999", "1000", "5000", "9223372036854775807", "1e19", "\"x\"", "null", "2.5"]
        let addresses = ["127.0.0.1:80", "[::1]:8080", "0.0.0.0:1", "[::]:1", "999.1.1.1:99999", "127.0.0.1:99999", "", String(repeating: "a", count: 300),
                         "1.2.3.4:0", "10.0.0.\(Int.random(in: 0...300, using: &rng)):81", "[::ffff:1.2.3.4]:5"]
        let zones = ["\"zone-a\"", "\"zone-b\"", "\"\"", "\"z\\u0001\"", "\"\(String(repeating: "z", count: 200))\"", "null", "7"]
        let groups = ["app", "hash", "nope", ""]
        var admittedTotal = 0
        for _ in 0..<600 {
            let n = Int.random(in: 0...12, using: &rng)
            let regs = (0..<n).map { _ in
                """
                {"address": "\(addresses.randomElement(using: &rng)!)", "group": "\(groups.randomElement(using: &rng)!)", \
                "registered_at": "2026-01-01T00:00:00Z", "weight": \(weights.randomElement(using: &rng)!), \
                "zone": \(zones.randomElement(using: &rng)!)}
                """
            }
            let text = "{\"version\": 1, \"registrations\": [\(regs.joined(separator: ","))]}"
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            let loaded: [Registration]
            do { loaded = try StateFile.load(path: path) } catch { continue }  // refused with a message: fine
            let admitted = ControlPlane.admit(loaded.map {
                ControlPlane.Registration(group: $0.group, address: $0.address, zone: $0.zone ?? "zone-a",
                                          weight: $0.weight, registeredAt: $0.registeredAt)
            })
            admittedTotal += admitted.valid.count
            let control = ControlPlane(config: config, registrations: admitted.valid, persist: { _ in }, onEvent: { _ in })
            let plan = try control.makePlan()
            for g in plan.groups {
                let w = g.live.snapshot.weights
                #expect(w.count == g.targets.count)
                #expect(w.allSatisfy { (0...EffectiveWeight.max).contains($0) }, "\(w)")
            }
        }
        #expect(admittedTotal > 0, "some registrations were valid")
    }
}
