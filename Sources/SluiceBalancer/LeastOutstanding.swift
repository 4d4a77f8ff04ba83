/// Weighted least outstanding: picks the target with the fewest open connections or requests
/// in flight relative to its weight, breaking ties with smooth weighted round robin among the
/// tied targets (nginx's `least_conn`).
///
/// Loads are compared by cross multiplication — `a` beats `b` when
/// `a.outstanding × b.weight < b.outstanding × a.weight` — so no division happens and weights
/// change the balance point exactly. Weight-0 targets and those in `excluding` are skipped.
///
/// The counts are passed in rather than owned, because the data plane keeps one set of counts
/// per target whatever the algorithm (see `TargetPicker`). They come as an
/// `UnsafeBufferPointer<Int>`: it passes without retain, copy or allocation and compiles
/// cleanly in Swift 6.3 without the availability gates `Span` carries on Apple platforms.
/// A value type owned by one worker; `next` does not allocate.
public struct LeastOutstanding: Sendable {
    /// Weights and the rotation used among tied targets.
    private var smooth: SmoothWeightedRoundRobin

    /// Creates the picker for `weights` (each in `0...SmoothWeightedRoundRobin.maxWeight`).
    public init(weights: [Int]) {
        smooth = SmoothWeightedRoundRobin(weights: weights)
    }

    /// The weights, one per target index.
    public var weights: [Int] { smooth.weights }

    /// Number of targets (including weight-0 ones).
    public var count: Int { smooth.count }

    /// Picks the least loaded target; `outstanding[i]` is target `i`'s current load and must
    /// cover every target. Returns nil when no target with weight > 0 is outside `excluding`.
    public mutating func next(outstanding: UnsafeBufferPointer<Int>, excluding: TriedTargets = TriedTargets()) -> Int? {
        let weights = smooth.weights
        assert(outstanding.count >= weights.count, "outstanding counts do not cover every target")
        let n = min(weights.count, outstanding.count)
        var best = -1
        var ties = 0
        for i in 0..<n {
            let w = weights[i]
            if w == 0 || (excluding.count > 0 && excluding.contains(i)) { continue }
            if best < 0 {
                best = i
                ties = 1
                continue
            }
            let mine = outstanding[i] &* weights[best]
            let theirs = outstanding[best] &* w
            if mine < theirs {
                best = i
                ties = 1
            } else if mine == theirs {
                ties += 1
            }
        }
        if ties <= 1 { return best < 0 ? nil : best }

        // Several targets share the lowest load: smooth weighted round robin among them only.
        // Targets before `best` cannot be tied (they would have been `best`).
        let bestLoad = outstanding[best]
        let bestWeight = weights[best]
        var chosen = -1
        var chosenCurrent = Int.min
        var total = 0
        for i in best..<n {
            let w = weights[i]
            if w == 0 || (excluding.count > 0 && excluding.contains(i)) { continue }
            if outstanding[i] &* bestWeight != bestLoad &* w { continue }
            let c = smooth.current[i] &+ w
            smooth.current[i] = c
            total &+= w
            if c > chosenCurrent {
                chosen = i
                chosenCurrent = c
            }
        }
        smooth.current[chosen] = chosenCurrent &- total
        return chosen
    }

    /// Replaces the weights (slow start, health changes), keeping the tie rotation where it can;
    /// see `SmoothWeightedRoundRobin.setWeights(_:)`. Cold path.
    public mutating func setWeights(_ weights: [Int]) {
        smooth.setWeights(weights)
    }
}
