import SluiceBalancer
import Synchronization

/// Round robin shared by all workers: the smooth weighted sequence of one period, computed
/// once per Plan, walked by one atomic counter. Connections spread by `SO_REUSEPORT` hashing
/// still see the targets take turns in order, whichever worker accepted them.
final class SharedRotation: Sendable {
    /// Longest period kept; larger weight sums use a per-worker rotation instead.
    static let maxPeriod = 1 << 16
    /// Most work spent building one sequence (period × targets).
    static let maxBuildSteps = 4_000_000

    private let sequence: [Int32]
    private let counter = Atomic<UInt64>(0)

    /// Nil when no target can be picked or the period would exceed `maxPeriod`.
    init?(weights: [Int]) {
        let g = weights.reduce(0) { SharedRotation.gcd($0, $1) }
        guard g > 0 else { return nil }
        let period = weights.reduce(0) { $0 + $1 / g }
        guard period <= SharedRotation.maxPeriod else { return nil }
        if weights.allSatisfy({ $0 == 0 || $0 == g }) {
            // Equal weights: the smooth sequence is simply every target in turn (O(n), not O(n²)).
            sequence = weights.indices.filter { weights[$0] > 0 }.map { Int32($0) }
            return
        }
        // Smooth weighted round robin costs O(targets) per step: keep the build bounded.
        guard period * weights.count <= SharedRotation.maxBuildSteps else { return nil }
        var rr = SmoothWeightedRoundRobin(weights: weights.map { $0 / g })
        var seq: [Int32] = []
        seq.reserveCapacity(period)
        for _ in 0..<period { seq.append(Int32(rr.next() ?? 0)) }
        sequence = seq
    }

    /// The next target in turn that is not in `excluding`, or nil if every target is.
    @inline(__always)
    func next(excluding: TriedTargets) -> Int? {
        let start = Int(counter.add(1, ordering: .relaxed).oldValue % UInt64(sequence.count))
        var i = start
        repeat {
            let t = Int(sequence[i])
            if !excluding.contains(t) { return t }
            i = i + 1 == sequence.count ? 0 : i + 1
        } while i != start
        return nil
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
