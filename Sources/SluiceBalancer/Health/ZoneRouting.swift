/// `cross_zone` of a group, in the balancer's terms (SPEC §4, Zones).
public enum CrossZoneMode: Sendable, Equatable {
    /// `true`: every eligible target shares this node's traffic by weight.
    case enabled
    /// `false`: only the node's zone while any of its targets is eligible; else all zones.
    case disabled
    /// `prefer_local`: as much in-zone as an even load per target allows.
    case preferLocal
}

/// Effective per-target weights of one group for this node, by zone (SPEC §4, Zones).
///
/// Input: every registered target of the group, in target order, with its zone, whether it
/// may get new traffic (`eligible`: healthy, `unavailable`, or everyone non-draining when the
/// group fails open — the caller decides) and its configured weight. Output: one weight per
/// target, 0 = no new traffic. A target whose weight is 0 is no capacity. When no target is
/// eligible (with weight), every weight is 0: fail-open is the caller's decision.
///
/// `preferLocal` is Envoy's zone-aware routing generalised to zones of different sizes. A
/// node only knows targets, not the other nodes or their traffic, so it assumes that **client
/// traffic arrives evenly in every zone that has registered targets** (one share per zone,
/// whatever its health), and that every node in a zone runs this same computation. With the
/// zone's capacity `c_z` (sum of eligible weights) and traffic `t_z = C / k` (`C` the total
/// capacity, `k` the zones with targets):
///
/// * a zone with `c_z ≥ t_z` (surplus) keeps all its traffic local;
/// * a zone with `c_z < t_z` (deficit) keeps the share `c_z / t_z` local and sends the rest to
///   the surplus zones, in proportion to their surplus `c_w − t_w`.
///
/// Summed over all zones, every zone then receives exactly its capacity share, so every target
/// carries the same load per unit of weight, with the fewest requests crossing zones. A node
/// in a zone without registered targets is outside the model and spreads by capacity (as
/// `enabled`), which keeps loads even too. Within a zone, targets share by weight.
///
/// Weights are integers. `enabled`, `disabled` and a surplus zone under `preferLocal` return
/// the configured weights unchanged; a spilling `preferLocal` node scales its fractions to a
/// total of `999 × N` (N targets), keeps every nonzero share at least 1, divides by the gcd and
/// scales down so no weight exceeds 999.
public enum ZoneRouting {
    public typealias Target = (zone: String, eligible: Bool, weight: Int)

    public static func weights(targets: [Target], localZone: String, mode: CrossZoneMode) -> [Int] {
        let capacity = targets.map { $0.eligible ? max(0, $0.weight) : 0 }
        guard capacity.contains(where: { $0 > 0 }) else { return [Int](repeating: 0, count: targets.count) }
        switch mode {
        case .enabled:
            return capacity
        case .disabled:
            let local = targets.indices.map { targets[$0].zone == localZone ? capacity[$0] : 0 }
            return local.contains(where: { $0 > 0 }) ? local : capacity
        case .preferLocal:
            return preferLocal(targets: targets, capacity: capacity, localZone: localZone)
        }
    }

    private static func preferLocal(targets: [Target], capacity: [Int], localZone: String) -> [Int] {
        // Zones in first-seen order, with their capacity.
        var zones: [String] = []
        var zoneCapacity: [Int] = []
        var zoneOf: [Int] = []
        for (i, target) in targets.enumerated() {
            if let z = zones.firstIndex(of: target.zone) {
                zoneOf.append(z)
                zoneCapacity[z] += capacity[i]
            } else {
                zoneOf.append(zones.count)
                zones.append(target.zone)
                zoneCapacity.append(capacity[i])
            }
        }
        guard let local = zones.firstIndex(of: localZone) else { return capacity }
        // In units where each zone's traffic is `total` and capacity is `k × c_z` (integers).
        let k = zones.count
        let total = zoneCapacity.reduce(0, +)
        let scaled = zoneCapacity.map { $0 * k }
        guard scaled[local] < total else {
            // Surplus (or exactly even): everything stays local.
            return targets.indices.map { zoneOf[$0] == local ? capacity[$0] : 0 }
        }
        let surplus = scaled.map { max(0, $0 - total) }
        let surplusSum = surplus.reduce(0, +)
        let keep = Double(scaled[local]) / Double(total)
        var fractions = [Double](repeating: 0, count: targets.count)
        for i in targets.indices where capacity[i] > 0 {
            let z = zoneOf[i]
            let share = Double(capacity[i]) / Double(zoneCapacity[z])
            if z == local {
                fractions[i] = keep * share
            } else if surplus[z] > 0 {
                fractions[i] = (1 - keep) * Double(surplus[z]) / Double(surplusSum) * share
            }
        }
        return integerWeights(fractions)
    }

    /// Fractions summing to 1 → integer weights of total about `999 × N`, each nonzero
    /// fraction at least 1, divided by their gcd, then scaled down so none exceeds
    /// `SmoothWeightedRoundRobin.maxWeight` (the pickers trap above it).
    static func integerWeights(_ fractions: [Double]) -> [Int] {
        let resolution = Double(999 * max(1, fractions.count))
        var weights = fractions.map { $0 > 0 ? max(1, Int(($0 * resolution).rounded())) : 0 }
        let divisor = weights.reduce(0) { gcd($0, $1) }
        if divisor > 1 { weights = weights.map { $0 / divisor } }
        // One target holding more than 1/N of the traffic would get more than 999.
        let cap = SmoothWeightedRoundRobin.maxWeight
        if let top = weights.max(), top > cap {
            weights = weights.map { $0 > 0 ? max(1, $0 * cap / top) : 0 }
        }
        return weights
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}
