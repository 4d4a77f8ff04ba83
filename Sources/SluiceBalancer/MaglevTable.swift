/// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
/// Load Balancer", NSDI 2016), with weights.
///
/// A lookup table of prime size `M` maps `hash % M` to a target index. Each target walks its
/// own permutation of the slots — `offset + j × skip (mod M)`, with `offset` and `skip` taken
/// from two differently seeded `StableHash`es of its key — and claims the next free slot on
/// its turn. Turns are weighted: in each round a target with weight `w` adds `w` to its credit
/// and claims one slot for every `maxWeight` of credit, so entry shares are proportional to
/// weight. Credit starts at `maxWeight − w`, so every target with weight > 0 claims a slot in
/// round one (provided `M` is at least the number of such targets).
///
/// Targets take their turns in key order, not index order, so the slot → key mapping depends
/// only on the set of (key, weight) pairs: it is the same in every process, on every node and
/// for any ordering of the targets. Keys should be unique within a table.
///
/// Built once off the data plane (O(M log M)); immutable and shared between workers afterwards.
/// Lookups read a flat `[Int32]` and do not allocate.
public final class MaglevTable: Sendable {
    /// Default table size: a prime comfortably above 100 × the largest expected group.
    public static let defaultSize = 65537
    /// Seeds of the two key hashes giving a target's permutation. Never change them: they fix
    /// where flows land.
    static let offsetSeed: UInt64 = 0x6d61_676c_6576_6f66  // "maglevof"
    static let skipSeed: UInt64 = 0x6d61_676c_6576_736b  // "maglevsk"

    /// The table size `M` (a prime).
    public let size: Int
    /// Number of targets the table was built for (weight-0 ones included).
    public let targetCount: Int
    /// Slot → target index; empty when no target has weight > 0.
    private let entries: [Int32]
    /// Target index → number of slots it owns.
    private let counts: [Int]
    /// Target indices with weight > 0, used to answer "everything excluded" without a scan.
    private let activeTargets: [Int]

    /// Builds the table. `keys` are stable target identities (the address text), `weights` are
    /// in `0...SmoothWeightedRoundRobin.maxWeight` (0 gets no entries), `size` must be prime.
    public init(keys: [String], weights: [Int], size: Int = MaglevTable.defaultSize) {
        precondition(keys.count == weights.count, "MaglevTable: \(keys.count) keys but \(weights.count) weights")
        precondition(size >= 2 && Self.isPrime(size), "MaglevTable: size \(size) is not a prime")
        precondition(size <= Int(Int32.max), "MaglevTable: size \(size) too large")
        let weights = SmoothWeightedRoundRobin.clamped(weights)

        // Turn order: by the key's UTF-8 bytes (then index for duplicate keys), never by position
        // in the config. Bytes, not `String <`, which treats canonically equivalent text as equal.
        let active = weights.indices.filter { weights[$0] > 0 }.sorted { a, b in
            let (ka, kb) = (keys[a].utf8, keys[b].utf8)
            return ka.elementsEqual(kb) ? a < b : ka.lexicographicallyPrecedes(kb)
        }
        var counts = [Int](repeating: 0, count: keys.count)
        self.size = size
        self.targetCount = keys.count
        self.activeTargets = active.sorted()
        guard let maxWeight = active.lazy.map({ weights[$0] }).max() else {
            self.entries = []
            self.counts = counts
            return
        }

        let m = UInt64(size)
        var position = active.map { Int(StableHash.hash(keys[$0], seed: Self.offsetSeed) % m) }
        let skip = active.map { Int(StableHash.hash(keys[$0], seed: Self.skipSeed) % (m - 1)) + 1 }
        var credit = active.map { maxWeight - weights[$0] }
        var entries = [Int32](repeating: -1, count: size)
        var filled = 0
        fill: while true {
            for turn in active.indices {
                let target = active[turn]
                credit[turn] += weights[target]
                while credit[turn] >= maxWeight {
                    credit[turn] -= maxWeight
                    // Next free slot on this target's permutation; `skip` is in 1..<M and M is
                    // prime, so the permutation visits every slot and this ends.
                    var slot = position[turn]
                    while entries[slot] >= 0 {
                        slot += skip[turn]
                        if slot >= size { slot -= size }
                    }
                    entries[slot] = Int32(target)
                    counts[target] += 1
                    filled += 1
                    if filled == size { break fill }
                    slot += skip[turn]
                    if slot >= size { slot -= size }
                    position[turn] = slot
                }
            }
        }
        self.entries = entries
        self.counts = counts
    }

    /// The target owning `hash`'s slot, or nil when no target has weight > 0.
    public func lookup(_ hash: UInt64) -> Int? {
        if entries.isEmpty { return nil }
        return Int(entries[Int(hash % UInt64(entries.count))])
    }

    /// Like `lookup(_:)`, but when the slot's target is in `excluding` walks forward (wrapping)
    /// to the first slot whose target is not. The walk is bounded by the table size and in
    /// practice ends within a few slots; nil when every target with weight > 0 is excluded.
    public func lookup(_ hash: UInt64, excluding: TriedTargets) -> Int? {
        if entries.isEmpty { return nil }
        let size = entries.count
        var slot = Int(hash % UInt64(size))
        if excluding.count == 0 { return Int(entries[slot]) }
        if activeTargets.count <= excluding.count && allActiveExcluded(excluding) { return nil }
        for _ in 0..<size {
            let target = Int(entries[slot])
            if !excluding.contains(target) { return target }
            slot += 1
            if slot == size { slot = 0 }
        }
        return nil
    }

    /// Number of slots owned by `target` (for tests and metrics).
    public func entryCount(of target: Int) -> Int {
        counts.indices.contains(target) ? counts[target] : 0
    }

    /// A prime ≥ 100 × `targetCount` (so shares are within ~1% of the weights and a removal
    /// disturbs few extra flows), at least 251 and at most `defaultSize` — except that groups
    /// of more than 6553 targets get a prime ≥ 10 × `targetCount`.
    public static func recommendedSize(targetCount: Int) -> Int {
        precondition(targetCount >= 0, "negative target count")
        if targetCount <= defaultSize / 100 { return nextPrime(atLeast: max(251, targetCount * 100)) }
        if targetCount <= defaultSize / 10 { return defaultSize }
        return nextPrime(atLeast: targetCount * 10)
    }

    private func allActiveExcluded(_ excluding: TriedTargets) -> Bool {
        for target in activeTargets where !excluding.contains(target) { return false }
        return true
    }

    static func nextPrime(atLeast n: Int) -> Int {
        var candidate = max(2, n)
        while !isPrime(candidate) { candidate += 1 }
        return candidate
    }

    static func isPrime(_ n: Int) -> Bool {
        if n < 2 { return false }
        if n < 4 { return true }
        if n % 2 == 0 { return false }
        var d = 3
        while d * d <= n {
            if n % d == 0 { return false }
            d += 2
        }
        return true
    }
}
