/// The per-worker, per-target-group picking state the data plane holds: the configured
/// algorithm, its rotation state, the Maglev table for hashing, and the outstanding count
/// (open connections or requests in flight, as counted by this worker) of every target.
///
/// `pick` dispatches with a `switch` over concrete types — no existentials, closures or
/// allocation per pick. The caller reports every connection or request it starts with
/// `opened(_:)` and every one that ends with `closed(_:)`; `leastOutstanding` reads those
/// counts, and they are available to every algorithm for metrics and draining.
///
/// Owned by one worker and mutated only there. For the hash algorithms (`flowHash`,
/// `headerHash`, `cookieHash`), weights live in the shared `MaglevTable`: a weight change means
/// building a new table off-loop and handing it in with `setMaglev(_:)`.
///
/// `headerHash` / `cookieHash`: the data plane hashes the header or cookie value with
/// `StableHash` (with a seed that is the same on every node, e.g. derived from the group name,
/// so every node sends a key to the same target) and calls `pick(hash:excluding:)`. When the
/// request does not carry the key, it must call `pickRoundRobin(excluding:)` instead (SPEC §4:
/// such requests fall back to round robin); `pick` cannot tell a missing key from a hash.
public struct TargetPicker: Sendable {
    /// The algorithm `pick` uses.
    public let algorithm: BalancerAlgorithm
    /// Round robin: the `roundRobin` algorithm, and the fallback of the hash algorithms
    /// (`pickRoundRobin`, or a `flowHash` picker without a table).
    private var smooth: SmoothWeightedRoundRobin
    /// Only holds weights when `algorithm == .leastOutstanding`.
    private var least: LeastOutstanding
    /// Only holds weights when `algorithm == .randomTwo`; its generator state lives here.
    private var randomTwo: RandomTwoChoices
    private var maglev: MaglevTable?
    /// Outstanding connections / requests per target index.
    private var counts: [Int]

    /// Creates the picker for a group whose targets have `weights` (index = target index).
    /// `maglev` is required for the hash algorithms (`algorithm.usesMaglev`) and must have been
    /// built for the same targets; without one they fall back to round robin. `seed` seeds the
    /// `randomTwo` generator (ignored by the other algorithms); give each worker its own so
    /// workers do not draw in lockstep.
    public init(
        algorithm: BalancerAlgorithm, weights: [Int], maglev: MaglevTable?,
        seed: UInt64 = RandomTwoChoices.defaultSeed
    ) {
        assert(maglev.map { $0.targetCount == weights.count } ?? true, "Maglev table built for other targets")
        self.algorithm = algorithm
        self.smooth = SmoothWeightedRoundRobin(weights: weights)
        self.least = LeastOutstanding(weights: algorithm == .leastOutstanding ? weights : [])
        self.randomTwo = RandomTwoChoices(weights: algorithm == .randomTwo ? weights : [], seed: seed)
        self.maglev = maglev.flatMap { $0.targetCount == weights.count ? $0 : nil }
        self.counts = [Int](repeating: 0, count: weights.count)
    }

    /// Number of targets.
    public var targetCount: Int { counts.count }

    /// Picks a target for a new connection or request, skipping `excluding` (targets already
    /// tried for it). `hash` is only read by the hash algorithms: the 5-tuple hash for
    /// `flowHash`, the `StableHash` of the header / cookie value for `headerHash` /
    /// `cookieHash` (call `pickRoundRobin` instead when the request lacks the key); pass 0
    /// otherwise. Returns nil when no eligible target is left.
    public mutating func pick(hash: UInt64, excluding: TriedTargets) -> Int? {
        switch algorithm {
        case .roundRobin:
            return smooth.next(excluding: excluding)
        case .leastOutstanding:
            return counts.withUnsafeBufferPointer { least.next(outstanding: $0, excluding: excluding) }
        case .randomTwo:
            return counts.withUnsafeBufferPointer { randomTwo.next(outstanding: $0, excluding: excluding) }
        case .flowHash, .headerHash, .cookieHash:
            guard let maglev else { return smooth.next(excluding: excluding) }
            return maglev.lookup(hash, excluding: excluding)
        }
    }

    /// Smooth weighted round robin over the group whatever the algorithm: the data plane calls
    /// it for `headerHash` / `cookieHash` groups when a request lacks the header or cookie
    /// (SPEC §4). Shares the rotation `roundRobin` uses, so it honours weights and `excluding`.
    public mutating func pickRoundRobin(excluding: TriedTargets) -> Int? {
        smooth.next(excluding: excluding)
    }

    /// Records a connection or request started on `target`.
    public mutating func opened(_ target: Int) {
        guard counts.indices.contains(target) else { return }
        counts[target] &+= 1
    }

    /// Records a connection or request on `target` that ended. Every `closed` must match an
    /// `opened`; an unmatched one is a bug (asserted) and leaves the count at 0 in release.
    public mutating func closed(_ target: Int) {
        guard counts.indices.contains(target) else { return }
        assert(counts[target] > 0, "closed(\(target)) without a matching opened")
        if counts[target] > 0 { counts[target] -= 1 }
    }

    /// Connections or requests currently outstanding on `target`.
    public func outstanding(_ target: Int) -> Int {
        counts.indices.contains(target) ? counts[target] : 0
    }

    /// Replaces the weights (slow start, health changes) for the same targets, keeping the
    /// outstanding counts and the rotation state. Cold path.
    public mutating func setWeights(_ weights: [Int]) {
        assert(weights.count == counts.count, "setWeights: \(weights.count) weights for \(counts.count) targets")
        if weights.count != counts.count {
            // Not for the same targets (a bug): keep picking in bounds rather than trap.
            counts = Array(counts.prefix(weights.count)) + Array(repeating: 0, count: max(0, weights.count - counts.count))
        }
        smooth.setWeights(weights)
        if algorithm == .leastOutstanding { least.setWeights(weights) }
        if algorithm == .randomTwo { randomTwo.setWeights(weights) }
    }

    /// Replaces the Maglev table (built off-loop for the same targets).
    public mutating func setMaglev(_ maglev: MaglevTable?) {
        assert(maglev.map { $0.targetCount == counts.count } ?? true, "Maglev table built for other targets")
        // A table for other targets could name an index out of range: round robin instead.
        self.maglev = maglev.flatMap { $0.targetCount == counts.count ? $0 : nil }
    }
}
