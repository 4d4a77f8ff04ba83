/// A span of bytes inside the buffer a parser was given: an (offset, length) pair, so the parser
/// never copies or allocates (STYLE 13). Offsets are relative to the start of the buffer passed
/// to `parse`, i.e. to the first byte of the head.
public struct ByteRange: Sendable, Equatable {
    /// Offset of the first byte.
    public var start: Int32
    /// Number of bytes.
    public var count: Int32

    /// Offset one past the last byte.
    @inlinable public var end: Int { Int(start) + Int(count) }

    /// The empty range at offset 0.
    public static let empty = ByteRange(start: 0, count: 0)

    @inlinable
    public init(start: Int32, count: Int32) {
        self.start = start
        self.count = count
    }

    /// Internal convenience: `[start, end)` with `Int` offsets (heads are bounded by
    /// `HTTPLimits.maxHeadBytes`, far below `Int32.max`).
    @inline(__always)
    init(_ start: Int, _ end: Int) {
        assert(end >= start)
        self.start = Int32(truncatingIfNeeded: start)
        self.count = Int32(truncatingIfNeeded: end &- start)
    }

    /// Whether the range holds no bytes.
    @inlinable public var isEmpty: Bool { count == 0 }
}
