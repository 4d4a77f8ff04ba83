/// A compiled CIDR: network and mask as two big-endian words, like
/// `RequestFacts.sourceAddress`.
struct SourceRange: Sendable {
    var family: UInt8
    var network: (UInt64, UInt64)
    var mask: (UInt64, UInt64)

    /// `bytes` is 4 (family 4) or 16 (family 6) network-order bytes; bits past `prefix` are
    /// ignored.
    init(family: UInt8, bytes: [UInt8], prefix: Int) {
        precondition(family == 4 && bytes.count == 4 || family == 6 && bytes.count == 16, "bad source range")
        precondition(prefix >= 0 && prefix <= bytes.count * 8, "bad source prefix")
        self.family = family
        var padded = bytes + [UInt8](repeating: 0, count: 16 - bytes.count)
        var maskBytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 {
            let keep = max(0, min(8, prefix - i * 8))
            maskBytes[i] = keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
            padded[i] &= maskBytes[i]
        }
        network = (Self.word(padded, 0), Self.word(padded, 8))
        mask = (Self.word(maskBytes, 0), Self.word(maskBytes, 8))
    }

    private static func word(_ bytes: [UInt8], _ from: Int) -> UInt64 {
        bytes[from..<from + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }

    @inline(__always)
    func contains(family: UInt8, _ address: (UInt64, UInt64)) -> Bool {
        family == self.family && address.0 & mask.0 == network.0 && address.1 & mask.1 == network.1
    }
}
