import SluiceBalancer
import Testing

@Suite struct ZoneRoutingTests {
    private typealias Target = ZoneRouting.Target

    private func targets(_ spec: [(String, Bool, Int)]) -> [Target] {
        spec.map { (zone: $0.0, eligible: $0.1, weight: $0.2) }
    }

    /// Load per unit of weight of every eligible target when each zone with targets sends the
    /// same traffic (1 per zone) through nodes running `preferLocal` there.
    private func loadPerWeight(_ group: [Target]) -> [Double] {
        var zones: [String] = []
        for target in group where !zones.contains(target.zone) { zones.append(target.zone) }
        var load = [Double](repeating: 0, count: group.count)
        for zone in zones {
            let weights = ZoneRouting.weights(targets: group, localZone: zone, mode: .preferLocal)
            let sum = Double(weights.reduce(0, +))
            for i in group.indices { load[i] += Double(weights[i]) / sum }
        }
        return group.indices.compactMap { i in
            group[i].eligible && group[i].weight > 0 ? load[i] / Double(group[i].weight) : nil
        }
    }

    private func expectEven(_ loads: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let low = loads.min(), let high = loads.max() else { return }
        // Rounding to integer weights (total about 999 × N) moves a small share by up to ±0.5.
        #expect((high - low) / high < 0.01, "loads per weight \(loads)", sourceLocation: sourceLocation)
    }

    /// Regression: a spilling node gave one remote target more than 1/N of the traffic, so its
    /// weight came out above 999 (1496 and 1501 here) and SmoothWeightedRoundRobin trapped.
    @Test func spillingWeightsStayWithinPickerRange() {
        let group = targets([("a", true, 100), ("b", true, 1), ("c", true, 500)])
        let weights = ZoneRouting.weights(targets: group, localZone: "a", mode: .preferLocal)
        #expect(weights.allSatisfy { (0...SmoothWeightedRoundRobin.maxWeight).contains($0) })
        #expect(weights[0] > 0 && weights[2] > 0)
        // Shares are kept to within rounding: a ≈ c here.
        #expect(abs(weights[0] - weights[2]) * 100 <= max(weights[0], weights[2]), "\(weights)")
        _ = TargetPicker(algorithm: .roundRobin, weights: weights, maglev: nil)
    }

    @Test func enabledSharesByWeightAcrossZones() {
        let group = targets([("a", true, 1), ("b", true, 3), ("b", false, 5), ("c", true, 0)])
        #expect(ZoneRouting.weights(targets: group, localZone: "a", mode: .enabled) == [1, 3, 0, 0])
    }

    @Test func disabledKeepsLocalWhileAnyIsHealthy() {
        let group = targets([("a", true, 2), ("a", false, 1), ("b", true, 3)])
        #expect(ZoneRouting.weights(targets: group, localZone: "a", mode: .disabled) == [2, 0, 0])
        #expect(ZoneRouting.weights(targets: group, localZone: "b", mode: .disabled) == [0, 0, 3])
        // No healthy local target: spill to every healthy one.
        let down = targets([("a", false, 2), ("b", true, 3), ("c", true, 1)])
        #expect(ZoneRouting.weights(targets: down, localZone: "a", mode: .disabled) == [0, 3, 1])
        // A node in a zone without targets spills too.
        #expect(ZoneRouting.weights(targets: down, localZone: "z", mode: .disabled) == [0, 3, 1])
    }

    @Test func allUnhealthyIsAllZeros() {
        let group = targets([("a", false, 1), ("b", false, 1), ("b", true, 0)])
        for mode in [CrossZoneMode.enabled, .disabled, .preferLocal] {
            #expect(ZoneRouting.weights(targets: group, localZone: "a", mode: mode) == [0, 0, 0])
        }
        #expect(ZoneRouting.weights(targets: [], localZone: "a", mode: .preferLocal) == [])
    }

    @Test func preferLocalWithEqualZonesStaysLocal() {
        let group = targets([("a", true, 1), ("a", true, 1), ("b", true, 1), ("b", true, 1)])
        #expect(ZoneRouting.weights(targets: group, localZone: "a", mode: .preferLocal) == [1, 1, 0, 0])
        #expect(ZoneRouting.weights(targets: group, localZone: "b", mode: .preferLocal) == [0, 0, 1, 1])
        expectEven(loadPerWeight(group))
    }

    /// zone-a has 1 target, zone-b 3. Traffic is half per zone; capacity a quarter in a.
    /// A node in zone-a keeps 1/4 ÷ 1/2 = 50% local and sends 50% to zone-b (1/6 per target);
    /// a node in zone-b keeps all. Each target then carries 1/4 of all traffic.
    @Test func preferLocalSmallZoneSpillsJustEnough() {
        let group = targets([("a", true, 1), ("b", true, 1), ("b", true, 1), ("b", true, 1)])
        #expect(ZoneRouting.weights(targets: group, localZone: "a", mode: .preferLocal) == [3, 1, 1, 1])
        #expect(ZoneRouting.weights(targets: group, localZone: "b", mode: .preferLocal) == [0, 1, 1, 1])
        let loads = loadPerWeight(group)
        expectEven(loads)
        #expect(abs(loads[0] - 0.5) < 0.001)  // of 2 zones' traffic: 1/4 of the total each
    }

    @Test func preferLocalSpillsToSurplusZonesOnlyInProportion() {
        // Capacities a 1, b 2, c 6 (total 9, 3 zones, 3 each): a short by 2, b short by 1, c 3 over.
        let group = targets([("a", true, 1), ("b", true, 2), ("c", true, 2), ("c", true, 4)])
        let fromA = ZoneRouting.weights(targets: group, localZone: "a", mode: .preferLocal)
        // a keeps 1/3 and sends 2/3 to c only (b has no surplus), split 1:2 inside c.
        #expect(fromA == [3, 0, 2, 4])
        let fromB = ZoneRouting.weights(targets: group, localZone: "b", mode: .preferLocal)
        #expect(fromB == [0, 6, 1, 2])  // b keeps 2/3, sends 1/3 to c
        #expect(ZoneRouting.weights(targets: group, localZone: "c", mode: .preferLocal) == [0, 0, 2, 4])
        expectEven(loadPerWeight(group))
    }

    @Test func preferLocalIsEvenForManyShapes() {
        let shapes: [[(String, Bool, Int)]] = [
            [("a", true, 1), ("b", true, 1), ("b", true, 1), ("c", true, 1), ("c", true, 1), ("c", true, 1)],
            [("a", true, 5), ("b", true, 1), ("b", true, 1), ("c", true, 7)],
            [("a", true, 1), ("a", false, 9), ("b", true, 2), ("c", true, 3), ("c", true, 999)],
            [("a", true, 999), ("b", true, 1)],
            [("a", true, 3), ("b", true, 1), ("c", true, 1), ("d", true, 1), ("e", true, 13)],
        ]
        for shape in shapes { expectEven(loadPerWeight(targets(shape))) }
    }

    @Test func preferLocalWithNoHealthyLocalTargetSpillsBySurplus() {
        // Zone a has targets but none healthy: a's traffic goes where capacity is spare.
        let group = targets([("a", false, 1), ("b", true, 1), ("c", true, 1), ("c", true, 1)])
        // Capacity b 1, c 2 (total 3, 3 zones, 1 each): only c has surplus.
        #expect(ZoneRouting.weights(targets: group, localZone: "a", mode: .preferLocal) == [0, 0, 1, 1])
        expectEven(loadPerWeight(group))
    }

    @Test func preferLocalNodeInAZoneWithoutTargetsSpreadsByCapacity() {
        let group = targets([("a", true, 1), ("b", true, 3)])
        #expect(ZoneRouting.weights(targets: group, localZone: "x", mode: .preferLocal) == [1, 3])
    }

    @Test func weightsStayIntegralAndBounded() {
        // A tiny share still gets at least 1.
        let group = targets([("a", true, 1)] + (0..<50).map { _ in ("b", true, 999) })
        let weights = ZoneRouting.weights(targets: group, localZone: "a", mode: .preferLocal)
        #expect(weights.allSatisfy { $0 >= 1 && $0 <= EffectiveWeight.max })
    }
}
