import Foundation
import SluiceControlPlane
import Testing

/// The values and keys of SPEC §10: encoding, and total decoding of hostile values.
@Suite struct FleetRecordsTests {
    @Test func targetValuesRoundTrip() throws {
        let plain = FleetRecords.TargetRecord(zone: "zone-b", weight: 3)
        #expect(String(decoding: FleetRecords.encode(plain), as: UTF8.self) == "{\"weight\":3,\"zone\":\"zone-b\"}")
        #expect(try FleetRecords.decodeTarget(FleetRecords.encode(plain)).get() == plain)
        let draining = FleetRecords.TargetRecord(zone: "z", weight: 1, draining: true, since: "2026-12-07T10:00:00Z")
        #expect(try FleetRecords.decodeTarget(FleetRecords.encode(draining)).get() == draining)
        #expect(try FleetRecords.decodeTarget(Array("{\"zone\":\"z\"}".utf8)).get().weight == 1, "weight defaults to 1")
    }

    @Test func malformedValuesAreProblemsNotTraps() {
        for bad in ["", "{", "[]", "null", "{\"weight\":1}", "{\"zone\":1}", "{\"zone\":\"z\",\"weight\":\"x\"}",
                    "{\"zone\":\"z\",\"weight\":1.5}", "{\"zone\":\"z\",\"weight\":1e300}",
                    "{\"zone\":\"z\",\"draining\":\"yes\"}", String(repeating: "[", count: 100_000)] {
            guard case .failure = FleetRecords.decodeTarget(Array(bad.utf8)) else {
                Issue.record("accepted \(bad.prefix(40))")
                continue
            }
        }
    }

    @Test func keys() {
        let k = FleetRecords.Keys(prefix: "/sluice/prod")
        #expect(k.target(group: "app", address: "10.0.0.1:80") == "/sluice/prod/targets/app/10.0.0.1:80")
        #expect(k.targetName("/sluice/prod/targets/app/[::1]:80")! == ("app", "[::1]:80"))
        #expect(k.targetName("/sluice/prod/targets/app") == nil)
        #expect(k.targetName("/sluice/prod/targets//x") == nil)
        #expect(k.ack(group: "app", address: "10.0.0.1:80", node: "lb-a1") == "/sluice/prod/drained/app/10.0.0.1:80/lb-a1")
        #expect(k.nodeName("/sluice/prod/nodes/lb-a1") == "lb-a1")
        #expect(k.leaderScaling == "/sluice/prod/leader/scaling")
    }

    @Test func nodeValues() {
        let n = FleetRecords.NodeRecord(name: "lb-a1", zone: "zone-a", version: "0.3.0", planGeneration: 7,
                                        started: "2026-12-07T10:00:00Z")
        #expect(FleetRecords.decodeNode(name: "lb-a1", FleetRecords.encode(n)) == n)
        #expect(FleetRecords.decodeNode(name: "x", Array("garbage".utf8)) == nil)
    }

    @Test func timestamps() {
        let t = FleetRecords.timestamp(Date(timeIntervalSince1970: 1_800_000_000))
        #expect(t == "2027-01-15T08:00:00Z")
        #expect(FleetRecords.seconds(t) == 1_800_000_000)
        #expect(FleetRecords.seconds("yesterday") == nil)
    }
}
