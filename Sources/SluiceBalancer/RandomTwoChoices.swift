/// Power of two random choices (Mitzenmacher) on outstanding work, with weights.
///
/// Each pick draws two distinct eligible targets at random — each draw with probability
/// proportional to weight — and returns the one with less outstanding work per weight,
/// compared by cross multiplication as in `LeastOutstanding` (`a` beats `b` when
/// `a.outstanding × b.weight < b.outstanding × a.weight`; the first draw wins a tie). With equal
/// loads the shares therefore follow the weights; with unequal loads the most loaded target
/// is picked only when it is the sole eligible one. Weight-0 targets and those in `excluding`
/// are never drawn; a single eligible target is returned without drawing.
///
/// Randomness comes from a splitmix64 generator held inline and seeded at `init`, so a picker
/// is deterministic for a given seed (tests) and needs no global state, locks or allocation.
/// Workers should be given different seeds so they do not draw in lockstep.
///
/// A value type owned by one worker; `next` makes up to three passes over the weights and does
/// not allocate.
public struct RandomTwoChoices: Sendable {
    /// The seed used when the caller gives none.
    public static let defaultSeed: UInt64 = 0x7261_6e64_6f6d_3221  // "random2!"

    /// The weights, one per target index; 0 means "never picked".
    public private(set) var weights: [Int]
    /// splitmix64 state.
    private var state: UInt64

    /// Creates the picker for `weights` (each in `0...SmoothWeightedRoundRobin.maxWeight`).
    public init(weights: [Int], seed: UInt64 = RandomTwoChoices.defaultSeed) {
        let weights = SmoothWeightedRoundRobin.clamped(weights)
        self.weights = weights
        self.state = seed
    }

    /// Number of targets (including weight-0 ones).
    public var count: Int { weights.count }

    /// Picks a target; `outstanding[i]` is target `i`'s current load and must cover every
    /// target. Returns nil when no target with weight > 0 is outside `excluding`.
    public mutating func next(outstanding: UnsafeBufferPointer<Int>, excluding: TriedTargets = TriedTargets()) -> Int? {
        let weights = self.weights
        assert(outstanding.count >= weights.count, "outstanding counts do not cover every target")
        let n = min(weights.count, outstanding.count)

        // Pass 1: total eligible weight.
        var total = 0
        var eligible = 0
        var only = -1
        for i in 0..<n {
            let w = weights[i]
            if w == 0 || (excluding.count > 0 && excluding.contains(i)) { continue }
            total &+= w
            eligible += 1
            only = i
        }
        if eligible <= 1 { return only < 0 ? nil : only }

        // Pass 2: first candidate, weighted.
        var r = uniform(below: total)
        var first = -1
        for i in 0..<n {
            let w = weights[i]
            if w == 0 || (excluding.count > 0 && excluding.contains(i)) { continue }
            if r < w {
                first = i
                break
            }
            r -= w
        }

        // Pass 3: second candidate, weighted, among the others.
        r = uniform(below: total - weights[first])
        var second = -1
        for i in 0..<n {
            let w = weights[i]
            if i == first || w == 0 || (excluding.count > 0 && excluding.contains(i)) { continue }
            if r < w {
                second = i
                break
            }
            r -= w
        }

        return outstanding[second] &* weights[first] < outstanding[first] &* weights[second] ? second : first
    }

    /// Replaces the weights (slow start, health changes). Cold path.
    public mutating func setWeights(_ weights: [Int]) {
        let weights = SmoothWeightedRoundRobin.clamped(weights)
        self.weights = weights
    }

    /// Next splitmix64 output.
    private mutating func nextRandom() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        return StableHash.mix(state)
    }

    /// Uniform in `0..<bound` (`bound > 0`) by Lemire's multiply-shift; the bias is below
    /// `bound / 2^64`, negligible for weight sums.
    private mutating func uniform(below bound: Int) -> Int {
        Int(truncatingIfNeeded: nextRandom().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
