/// A timer-wheel entry of a worker: which kind of object it is for, the object's slab slot
/// and the generation (the use of that slot) it was scheduled for. A token whose generation
/// no longer matches the slot's object fired for a previous use and is ignored (the wheel
/// cancels lazily).
///
/// Packed into the wheel's 64-bit token explicitly:
///
/// ```
///  63                              32 31  28 27                          0
/// ┌──────────────────────────────────┬──────┬─────────────────────────────┐
/// │ generation (32 bits)             │ kind │ slot (28 bits, < 2^28)      │
/// └──────────────────────────────────┴──────┴─────────────────────────────┘
/// ```
public struct TimerToken: Equatable, Sendable {
    /// The slab a token's slot indexes. At most 16 kinds (4 bits).
    public enum Kind: UInt8, Sendable {
        /// An L4 `TCPConnection`.
        case tcp = 0
        /// An L7 `HTTPConnection`.
        case http = 1
        /// An HTTP/2 client connection.
        case h2 = 2
        /// An HTTP/2 connection to a target.
        case h2Upstream = 3
        /// A UDP flow.
        case udp = 4
    }

    public static let slotBits = 28
    public static let slotMask: UInt64 = (1 << 28) - 1
    public static let kindShift = 28
    public static let kindMask: UInt64 = 0xF
    public static let generationShift = 32

    public var kind: Kind
    public var slot: Int32
    public var generation: UInt32

    @inline(__always)
    public init(kind: Kind, slot: Int32, generation: UInt32) {
        assert(slot >= 0 && UInt64(slot) <= TimerToken.slotMask, "slab slot does not fit a timer token")
        self.kind = kind
        self.slot = slot
        self.generation = generation
    }

    /// Decodes a token read back from the wheel; nil for a kind this build does not know
    /// (never produced by `raw`).
    @inline(__always)
    public init?(raw: UInt64) {
        guard let kind = Kind(rawValue: UInt8(truncatingIfNeeded: (raw >> TimerToken.kindShift) & TimerToken.kindMask))
        else { return nil }
        self.kind = kind
        slot = Int32(truncatingIfNeeded: raw & TimerToken.slotMask)
        generation = UInt32(truncatingIfNeeded: raw >> TimerToken.generationShift)
    }

    /// The wheel's representation.
    @inline(__always)
    public var raw: UInt64 {
        UInt64(generation) << TimerToken.generationShift
            | UInt64(kind.rawValue) << TimerToken.kindShift
            | UInt64(UInt32(bitPattern: slot))
    }
}
