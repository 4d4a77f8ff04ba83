/// Cookie stickiness (`stickiness.cookie`, SPEC §4): maps a target to the value of the cookie
/// that names it, and a cookie value back to the target.
///
/// A target's cookie value is its `StableHash` — `StableHash.hash(targetKey, seed: secret)` —
/// written as 16 lowercase hex digits. It depends only on the target's key (its address text)
/// and the secret, so it stays valid across config reloads that keep the target, and is the
/// same on every node that shares the secret; it does not reveal the address, and without the
/// secret a client cannot name a target it was never sent to.
///
/// Built once per group when the plan is compiled (cold path: it sorts the hashes); lookups
/// parse the value in place and binary-search a sorted `[UInt64]`, without allocating. A
/// returned target is only a candidate: the data plane must still check that it is eligible
/// (healthy, not draining, not already tried) and pick normally otherwise.
public struct StickyIndex: Sendable {
    /// Length in bytes of a cookie value: 16 hex digits.
    public static let cookieValueLength = 16

    /// Target index → cookie hash.
    private let hashes: [UInt64]
    /// The cookie hashes in ascending order (ties by target index) ...
    private let sortedHashes: [UInt64]
    /// ... and the target index of each.
    private let sortedTargets: [Int32]

    /// Builds the index for a group whose targets have `targetKeys` (index = target index).
    /// Keys should be unique within the group; if two targets share a cookie value, the cookie
    /// leads to the lower index.
    public init(targetKeys: [String], secret: UInt64) {
        precondition(targetKeys.count <= Int(Int32.max), "StickyIndex: too many targets")
        let hashes = targetKeys.map { StableHash.hash($0, seed: secret) }
        let order = hashes.indices.sorted { hashes[$0] == hashes[$1] ? $0 < $1 : hashes[$0] < hashes[$1] }
        self.hashes = hashes
        self.sortedHashes = order.map { hashes[$0] }
        self.sortedTargets = order.map { Int32($0) }
    }

    /// Number of targets.
    public var targetCount: Int { hashes.count }

    /// The hash a cookie naming `target` carries (its value, before hex encoding).
    public func cookieHash(for target: Int) -> UInt64 {
        hashes[target]
    }

    /// The cookie value naming `target`: 16 lowercase hex digits. Allocates the string; see
    /// `writeCookieValue(for:to:)` for writing straight into a header buffer.
    public func cookieValue(for target: Int) -> String {
        var bytes = [UInt8](repeating: 0, count: Self.cookieValueLength)
        _ = bytes.withUnsafeMutableBytes { writeCookieValue(for: target, to: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes the cookie value naming `target` (16 lowercase hex ASCII digits) to the start of
    /// `buffer`, which must hold at least `cookieValueLength` bytes, and returns the number of
    /// bytes written. Does not allocate.
    @discardableResult
    public func writeCookieValue(for target: Int, to buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= Self.cookieValueLength, "StickyIndex: cookie buffer too small")
        let h = hashes[target]
        for i in 0..<Self.cookieValueLength {
            let nibble = UInt8(truncatingIfNeeded: h &>> UInt64(60 - 4 * i)) & 0xf
            buffer[i] = nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
        }
        return Self.cookieValueLength
    }

    /// The target a cookie value names, or nil when the value is malformed (not exactly 16 hex
    /// digits, optionally inside one pair of double quotes; either case is accepted) or names
    /// no target of this group. Does not allocate.
    public func target(forCookie value: UnsafeRawBufferPointer) -> Int? {
        guard let h = Self.parseCookieValue(value) else { return nil }
        // Lower bound of `h` in `sortedHashes`.
        var low = 0
        var high = sortedHashes.count
        while low < high {
            let mid = (low &+ high) &>> 1
            if sortedHashes[mid] < h { low = mid + 1 } else { high = mid }
        }
        guard low < sortedHashes.count && sortedHashes[low] == h else { return nil }
        return Int(sortedTargets[low])
    }

    /// `target(forCookie:)` on the UTF-8 bytes of `value`.
    public func target(forCookie value: String) -> Int? {
        var value = value
        return value.withUTF8 { target(forCookie: UnsafeRawBufferPointer($0)) }
    }

    /// Parses a cookie value: exactly 16 hex digits (either case), optionally inside one pair
    /// of double quotes (RFC 6265 allows a quoted cookie-value). Nil when malformed.
    public static func parseCookieValue(_ value: UnsafeRawBufferPointer) -> UInt64? {
        var start = 0
        var end = value.count
        if end == cookieValueLength + 2 && value[0] == 0x22 && value[end - 1] == 0x22 {
            start = 1
            end -= 1
        }
        guard end - start == cookieValueLength else { return nil }
        var h: UInt64 = 0
        for i in start..<end {
            let c = value[i]
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30  // 0-9
            case 0x61...0x66: digit = c - 0x61 + 10  // a-f
            case 0x41...0x46: digit = c - 0x41 + 10  // A-F
            default: return nil
            }
            h = h &<< 4 | UInt64(digit)
        }
        return h
    }
}
