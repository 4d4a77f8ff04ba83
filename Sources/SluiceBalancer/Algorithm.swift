/// Balancing algorithms this module implements for the per-connection / per-request pick.
public enum BalancerAlgorithm: Sendable, Equatable {
    /// Smooth weighted round robin (nginx's algorithm): even interleaving by weight.
    case roundRobin
    /// Fewest open connections / requests in flight, ties broken by smooth round robin.
    case leastOutstanding
    /// Maglev consistent hashing on a caller-supplied hash (the 5-tuple for L4).
    case flowHash
    /// Power of two random choices: two distinct targets drawn at random (with probability
    /// proportional to weight) and the one with less outstanding work per weight wins.
    /// See `RandomTwoChoices`.
    case randomTwo
    /// Maglev consistent hashing on the hash of a request header's value (`hash_key: {header:}`).
    /// The caller hashes the value with `StableHash` and passes it to `TargetPicker.pick`; a
    /// request without the header must go through `TargetPicker.pickRoundRobin` (SPEC §4).
    case headerHash
    /// Maglev consistent hashing on the hash of a request cookie's value (`hash_key: {cookie:}`).
    /// As for `headerHash`: `pick(hash:)` with the value's `StableHash`, and
    /// `pickRoundRobin` when the request has no such cookie.
    case cookieHash

    /// True for the algorithms that look targets up in a `MaglevTable` (`flowHash`,
    /// `headerHash`, `cookieHash`): the plan should build one for their groups.
    public var usesMaglev: Bool {
        switch self {
        case .flowHash, .headerHash, .cookieHash: return true
        case .roundRobin, .leastOutstanding, .randomTwo: return false
        }
    }

    /// True for the algorithms keyed on a request header or cookie (`headerHash`,
    /// `cookieHash`): a request lacking the key falls back to `TargetPicker.pickRoundRobin`.
    public var isRequestKeyed: Bool {
        self == .headerHash || self == .cookieHash
    }
}

/// Up to `TriedTargets.capacity` target indices already tried for one connection, kept inline
/// (no allocation) so a retry after a failed connect picks another target.
public struct TriedTargets: Sendable, Equatable {
    public static let capacity = 4
    public private(set) var count: Int = 0
    private var slots: (Int32, Int32, Int32, Int32) = (-1, -1, -1, -1)

    public init() {}

    public func contains(_ index: Int) -> Bool {
        let i = Int32(truncatingIfNeeded: index)
        return (count > 0 && slots.0 == i) || (count > 1 && slots.1 == i)
            || (count > 2 && slots.2 == i) || (count > 3 && slots.3 == i)
    }

    /// Records `index`; beyond `capacity` entries further ones are ignored.
    public mutating func insert(_ index: Int) {
        let i = Int32(truncatingIfNeeded: index)
        switch count {
        case 0: slots.0 = i
        case 1: slots.1 = i
        case 2: slots.2 = i
        case 3: slots.3 = i
        default: return
        }
        count += 1
    }

    /// Equal when the same indices were recorded in the same order. Written out because tuples
    /// do not conform to `Equatable`, so it cannot be synthesised.
    public static func == (lhs: TriedTargets, rhs: TriedTargets) -> Bool {
        lhs.count == rhs.count
            && (lhs.count < 1 || lhs.slots.0 == rhs.slots.0) && (lhs.count < 2 || lhs.slots.1 == rhs.slots.1)
            && (lhs.count < 3 || lhs.slots.2 == rhs.slots.2) && (lhs.count < 4 || lhs.slots.3 == rhs.slots.3)
    }
}
