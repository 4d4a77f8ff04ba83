import SluiceBalancer
import Testing

/// Computed weights never leave the balancers' range, whatever the inputs (the issue's
/// crash: `prefer_local` scaled to 999 × N and trapped the balancer's precondition).
@Suite struct WeightRangeTests {
    @Test func zoneRoutingNeverProducesAnOutOfRangeWeight() {
        var rng = TestRandom(seed: 7)
        let zones = ["zone-a", "zone-b", "zone-c", "zone-d"]
        for _ in 0..<3000 {
            let n = Int.random(in: 1...40, using: &rng)
            let group = (0..<n).map { _ -> ZoneRouting.Target in
                let w = Int.random(in: 0...10, using: &rng) == 0 ? Int.random(in: -5...200_000, using: &rng)
                    : EffectiveWeight.from(configured: Int.random(in: 0...999, using: &rng))
                return (zone: zones[Int.random(in: 0..<zones.count, using: &rng)],
                        eligible: Bool.random(using: &rng), weight: w)
            }
            for mode in [CrossZoneMode.enabled, .disabled, .preferLocal] {
                let local = zones[Int.random(in: 0..<zones.count, using: &rng)]
                let weights = ZoneRouting.weights(targets: group, localZone: local, mode: mode)
                #expect(weights.count == group.count)
                #expect(weights.allSatisfy { (0...EffectiveWeight.max).contains($0) }, "\(mode) \(group) → \(weights)")
                // An eligible target with capacity never gets 0 under enabled.
                if mode == .enabled {
                    for (i, t) in group.enumerated() where t.eligible && t.weight > 0 { #expect(weights[i] > 0) }
                }
            }
        }
    }

    /// The triggers, in configured weights.
    @Test func theReportedPreferLocalCasesStayInRange() {
        let one = EffectiveWeight.unit
        let cases: [[ZoneRouting.Target]] = [
            [("zone-a", true, one)] + (0..<4).map { _ in ("zone-b", true, one) },
            [("zone-a", false, one), ("zone-b", true, one), ("zone-b", true, 3 * one)],
            [("zone-a", true, one), ("zone-b", true, one), ("zone-b", true, 4 * one)],
        ]
        for group in cases {
            let w = ZoneRouting.weights(targets: group, localZone: "zone-a", mode: .preferLocal)
            #expect(w.allSatisfy { (0...EffectiveWeight.max).contains($0) }, "\(w)")
            #expect(w.contains { $0 > 0 })
        }
    }

    @Test func slowStartStaysWithinItsBase() {
        var rng = TestRandom(seed: 11)
        for _ in 0..<2000 {
            let base = Int.random(in: 0...EffectiveWeight.max, using: &rng)
            let window = UInt64.random(in: 1...UInt64(900_000_000_000), using: &rng)
            let since = UInt64.random(in: 0...UInt64.max / 2, using: &rng)
            let now = since &+ UInt64.random(in: 0...window &* 2, using: &rng)
            let w = SlowStart.weight(base: base, since: since, now: now, window: window)
            #expect((0...base).contains(w) || (base == 0 && w == 0))
            if base >= 10 && now < since + window { #expect(w >= base / 10) }
        }
    }

    /// A weight-1 target ramps in ninety steps now (in effective units), not all at once.
    @Test func weightOneRampsInFineSteps() {
        let base = EffectiveWeight.from(configured: 1)
        let window: UInt64 = 30_000_000_000
        let steps = Set((0..<300).map { SlowStart.weight(base: base, since: 0, now: UInt64($0) * window / 300, window: window) })
        #expect(steps.count > 50, "distinct weights while ramping: \(steps.count)")
        #expect(SlowStart.weight(base: base, since: 0, now: 0, window: window) == base / 10)
    }

    /// Balancers clamp what slipped through instead of trapping.
    @Test func balancersClampOutOfRangeWeights() {
        var rr = SmoothWeightedRoundRobin(weights: [-3, 5_000_000, 1])
        #expect(rr.weights == [0, EffectiveWeight.max, 1])
        #expect(rr.next() != nil)
        rr.setWeights([Int.max, Int.min, 2])
        #expect(rr.weights == [EffectiveWeight.max, 0, 2])
        let m = MaglevTable(keys: ["a", "b"], weights: [Int.max, 1], size: 65537)
        #expect(m.lookup(42) != nil)
        var picker = TargetPicker(algorithm: .randomTwo, weights: [Int.max, -1], maglev: nil)
        #expect(picker.pick(hash: 0, excluding: TriedTargets()) == 0)
    }
}
