/// A worker's pool of fixed-size byte buffers. Buffers are allocated the first time the pool
/// runs dry and then recycled; up to `maxPooled` idle ones are kept. Loop-bound: not Sendable.
public final class BufferPool {
    public let bufferSize: Int
    public let maxPooled: Int
    private var free: [UnsafeMutableRawPointer] = []
    public private(set) var allocated = 0

    public init(bufferSize: Int = 16 * 1024, maxPooled: Int = 1024) {
        self.bufferSize = bufferSize
        self.maxPooled = maxPooled
        free.reserveCapacity(maxPooled)
    }

    deinit {
        for b in free { b.deallocate() }
    }

    /// A buffer of `bufferSize` bytes; give it back with `release`.
    @inline(__always)
    public func acquire() -> UnsafeMutableRawPointer {
        if let b = free.popLast() { return b }
        allocated += 1
        return .allocate(byteCount: bufferSize, alignment: 16)
    }

    @inline(__always)
    public func release(_ buffer: UnsafeMutableRawPointer) {
        if free.count < maxPooled {
            free.append(buffer)
        } else {
            allocated -= 1
            buffer.deallocate()
        }
    }
}

@available(*, unavailable)
extension BufferPool: Sendable {}
