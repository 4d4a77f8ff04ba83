/// nginx's smooth weighted round robin: over every run of `sum(weights)` picks (from a fresh
/// state) each target is picked exactly `weight` times, and the picks are spread evenly rather
/// than bunched — weights 5, 1, 1 give `a a b a c a a`.
///
/// Each pick adds every eligible target's weight to its `current`, picks the eligible target
/// with the largest `current` (the lowest index on a tie) and subtracts the eligible total from
/// it. The sum of `current` over all targets therefore stays 0.
///
/// A value type owned by one worker; `next` mutates two arrays in place and does not allocate.
public struct SmoothWeightedRoundRobin: Sendable {
    /// Largest accepted weight: `EffectiveWeight.max` (the configuration's 0...999 in finer units).
    public static let maxWeight = EffectiveWeight.max

    /// The weights, one per target index; 0 means "never picked".
    public private(set) var weights: [Int]
    /// nginx's `current_weight`, one per target index. Internal so `LeastOutstanding` can run the
    /// same rotation among tied targets.
    var current: [Int]

    /// Creates the rotation for `weights` (each clamped to `0...maxWeight`).
    public init(weights: [Int]) {
        let weights = Self.clamped(weights)
        self.weights = weights
        self.current = [Int](repeating: 0, count: weights.count)
    }

    /// Number of targets (including weight-0 ones).
    public var count: Int { weights.count }

    /// Picks the next target index, skipping weight-0 targets and those in `excluding`, or
    /// returns nil when none is left. Excluded targets do not take part in the round at all
    /// (as in nginx's retry), so they neither gain nor lose credit.
    public mutating func next(excluding: TriedTargets = TriedTargets()) -> Int? {
        var best = -1
        var bestCurrent = Int.min
        var total = 0
        for i in 0..<weights.count {
            let w = weights[i]
            if w == 0 || (excluding.count > 0 && excluding.contains(i)) { continue }
            let c = current[i] &+ w
            current[i] = c
            total &+= w
            if c > bestCurrent {
                best = i
                bestCurrent = c
            }
        }
        guard best >= 0 else { return nil }
        current[best] = bestCurrent &- total
        return best
    }

    /// Replaces the weights. Targets that keep their index and a weight > 0 keep their
    /// `current`; new and weight-0 targets start at 0; the credits are then shifted so their sum
    /// is 0 again, which keeps the rotation bounded and fair from here on. Cold path (it may
    /// allocate when the target count changes).
    public mutating func setWeights(_ weights: [Int]) {
        let weights = Self.clamped(weights)
        var current = self.current
        if current.count != weights.count {
            current = Array(current.prefix(weights.count))
            current.append(contentsOf: repeatElement(0, count: max(0, weights.count - current.count)))
        }
        var sum = 0
        var active = 0
        for i in weights.indices {
            if weights[i] == 0 {
                current[i] = 0
            } else {
                sum += current[i]
                active += 1
            }
        }
        if active > 0 && sum != 0 {
            // Spread the imbalance over the active targets: `share` each, the remainder one by one.
            let share = sum / active
            var remainder = sum - share * active
            for i in weights.indices where weights[i] > 0 {
                current[i] -= share
                if remainder > 0 {
                    current[i] -= 1
                    remainder -= 1
                } else if remainder < 0 {
                    current[i] += 1
                    remainder += 1
                }
            }
        }
        self.weights = weights
        self.current = current
    }

    /// `weights` with each one clamped to `0...maxWeight`. Callers validate weights where they
    /// come in (config, API, state file, computed weights); the clamp keeps a value that slipped
    /// through from ever trapping, and keeps every sum far from overflow (≤ 99 900 × count).
    static func clamped(_ weights: [Int]) -> [Int] {
        weights.allSatisfy({ (0...maxWeight).contains($0) }) ? weights : weights.map(EffectiveWeight.clamp)
    }
}
