/// Deterministic 64-bit hashing: the same bytes and seed give the same value in every process,
/// on every machine and in every release.
///
/// Swift's `Hasher` is seeded per process, so it cannot place keys in a consistent-hashing
/// table that must agree across restarts and nodes. `StableHash` is FNV-1a (64-bit) over the
/// bytes, started from the FNV offset basis XOR `mix(seed)`, followed by the splitmix64
/// finaliser so that every input bit reaches every output bit. With seed 0 the value is
/// `mix(fnv1a64(bytes))`.
///
/// The values are part of the on-the-wire behaviour (they decide which target a flow reaches),
/// so they must never change; `StableHashTests` pins known values.
public enum StableHash {
    /// FNV-1a 64-bit offset basis.
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    /// FNV-1a 64-bit prime.
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// Hashes `bytes` with `seed`. Does not allocate.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h = offsetBasis ^ mix(seed)
        for byte in bytes {
            h = (h ^ UInt64(byte)) &* prime
        }
        return mix(h)
    }

    /// Hashes the UTF-8 bytes of `s` with `seed`; equal to hashing `Array(s.utf8)`.
    /// Does not allocate (native strings are hashed in place).
    public static func hash(_ s: String, seed: UInt64 = 0) -> UInt64 {
        if let h = s.utf8.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0), seed: seed) }) {
            return h
        }
        // Bridged or lazily stored strings: same function, byte by byte.
        var h = offsetBasis ^ mix(seed)
        for byte in s.utf8 {
            h = (h ^ UInt64(byte)) &* prime
        }
        return mix(h)
    }

    /// The splitmix64 finaliser (Stafford's "Mix13" variant): a bijection on `UInt64` with full
    /// avalanche. `mix(0) == 0`.
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z &>> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z &>> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z &>> 31)
    }
}
