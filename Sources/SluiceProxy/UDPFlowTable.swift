import SluiceCore

/// Identifies a UDP flow within one worker: the client's address and port, the address it
/// wrote to (a wildcard-bound socket receives for every local address, and one client port
/// writing to two of them makes two flows, each answered from its own address) and the
/// listener socket. Five words, compared and hashed without touching address bytes again.
struct UDPFlowKey: Equatable {
    /// IPv6: address bytes 0...7; IPv4: 0.
    var high: UInt64
    /// IPv6: address bytes 8...15; IPv4: the address.
    var low: UInt64
    /// The local address the datagram was sent to, in the same two-word form.
    var localHigh: UInt64 = 0
    var localLow: UInt64 = 0
    /// Listener socket (bits 32–63), address family (16–31), client port (0–15).
    var tag: UInt64

    init(high: UInt64, low: UInt64, localHigh: UInt64 = 0, localLow: UInt64 = 0, tag: UInt64) {
        self.high = high
        self.low = low
        self.localHigh = localHigh
        self.localLow = localLow
        self.tag = tag
    }

    /// The key of `client` writing to `local` on listener socket `socket`; nil for an address
    /// that is neither IPv4 nor IPv6.
    @inline(__always)
    init?(client: SocketAddress, local: SocketAddress, socket: Int32) {
        let tag = UInt64(UInt32(bitPattern: socket)) << 32 | UInt64(UInt16(truncatingIfNeeded: client.family)) << 16
            | UInt64(client.port)
        guard let (high, low) = UDPFlowKey.words(client) else { return nil }
        let (localHigh, localLow) = UDPFlowKey.words(local) ?? (0, 0)
        self.init(high: high, low: low, localHigh: localHigh, localLow: localLow, tag: tag)
    }

    @inline(__always)
    static func words(_ a: SocketAddress) -> (UInt64, UInt64)? {
        if let v4 = a.ipv4Address { return (0, UInt64(v4)) }
        return a.ipv6Address
    }
}

/// A worker's UDP flows by key: an open-addressing hash table (linear probing, deletion by
/// backward shift, so there are no tombstones) from `UDPFlowKey` to a flow slot. Pure and
/// loop-bound; no allocation per look-up, insertion or removal once it has grown.
///
/// Bounded by its caller: every insertion is for a flow the listener's `max_flows` share
/// admitted, and the table doubles only when more than half full, so its size stays within
/// four times the flows admitted. Keys are hashed with a per-worker random seed, so clients
/// cannot choose addresses that pile up in one probe run.
struct UDPFlowTable {
    private var keys: [UDPFlowKey]
    /// Flow slot per table position, -1 when empty.
    private var slots: [Int32]
    private var mask: Int
    private let seed: (UInt64, UInt64, UInt64)
    /// Flows in the table.
    private(set) var count = 0

    static let initialCapacity = 64

    init(seed: UInt64) {
        keys = Array(repeating: UDPFlowKey(high: 0, low: 0, tag: 0), count: UDPFlowTable.initialCapacity)
        slots = Array(repeating: -1, count: UDPFlowTable.initialCapacity)
        mask = UDPFlowTable.initialCapacity - 1
        var s = seed
        self.seed = (UDPFlowTable.splitmix(&s), UDPFlowTable.splitmix(&s), UDPFlowTable.splitmix(&s))
    }

    /// Positions in the table (a power of two).
    var capacity: Int { mask + 1 }

    /// Each worker's share of a listener's `max_flows`: the limit divided over the workers,
    /// rounded up (a client address always reaches the same worker, so the shares are not
    /// pooled), at least 1.
    static func perWorkerLimit(maxFlows: Int, workers: Int) -> Int {
        let w = max(1, workers)
        let m = max(1, maxFlows)
        return m / w + (m % w == 0 ? 0 : 1)
    }

    @inline(__always)
    private func position(_ key: UDPFlowKey) -> Int {
        // Multiply-and-fold rounds (as wyhash): each word passes a full-width multiplication
        // with seeded state; the last multiplier is odd, so no round loses everything before it.
        var h = UDPFlowTable.fold(key.high ^ seed.0, key.low ^ seed.1)
        h = UDPFlowTable.fold(h ^ key.localHigh, key.localLow ^ seed.2)
        h = UDPFlowTable.fold(h ^ key.tag, seed.0 | 1)
        return Int(truncatingIfNeeded: h ^ h >> 29) & mask
    }

    /// The flow slot of `key`, or nil.
    @inline(__always)
    func find(_ key: UDPFlowKey) -> Int32? {
        var i = position(key)
        while true {
            let s = slots[i]
            if s < 0 { return nil }
            if keys[i] == key { return s }
            i = (i + 1) & mask
        }
    }

    /// Adds `key` → `slot`; `key` must not be in the table.
    mutating func insert(_ key: UDPFlowKey, slot: Int32) {
        assert(slot >= 0 && find(key) == nil)
        if (count + 1) * 2 > capacity { grow() }
        var i = position(key)
        while slots[i] >= 0 { i = (i + 1) & mask }
        keys[i] = key
        slots[i] = slot
        count += 1
    }

    /// Removes `key`; returns its slot, or nil when it was not there.
    @discardableResult
    mutating func remove(_ key: UDPFlowKey) -> Int32? {
        var i = position(key)
        while true {
            if slots[i] < 0 { return nil }
            if keys[i] == key { break }
            i = (i + 1) & mask
        }
        let removed = slots[i]
        // Backward shift: move later members of the probe run into the hole when their home
        // position does not lie (cyclically) between the hole and where they sit.
        var hole = i
        var j = (i + 1) & mask
        while slots[j] >= 0 {
            let home = position(keys[j])
            let fromHole = (j &- hole) & mask
            let fromHome = (j &- home) & mask
            if fromHome >= fromHole {
                keys[hole] = keys[j]
                slots[hole] = slots[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        slots[hole] = -1
        count -= 1
        return removed
    }

    /// Every (key, slot) pair, in table order (cold path: Plan changes, tests).
    var entries: [(key: UDPFlowKey, slot: Int32)] {
        slots.indices.compactMap { slots[$0] >= 0 ? (keys[$0], slots[$0]) : nil }
    }

    private mutating func grow() {
        let old = entries
        let n = capacity * 2
        keys = Array(repeating: UDPFlowKey(high: 0, low: 0, tag: 0), count: n)
        slots = Array(repeating: -1, count: n)
        mask = n - 1
        count = 0
        for (k, s) in old { insert(k, slot: s) }
    }

    @inline(__always)
    private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let m = a.multipliedFullWidth(by: b)
        return m.high ^ m.low
    }

    private static func splitmix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
