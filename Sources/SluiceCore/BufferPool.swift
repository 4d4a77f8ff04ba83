#if canImport(Glibc)
import Glibc
#endif

/// A worker's pool of fixed-size byte buffers. Buffers are mapped (`mmap`) the first time the
/// pool runs dry and then recycled, so steady state makes no system call and no allocation.
///
/// Memory goes back when load falls: `trim()` (called by the worker about once a second)
/// unmaps the buffers that stayed idle for the whole period since the last trim, keeping
/// `keepIdle` of them. Mapping each buffer, rather than taking it from malloc, is what makes
/// the memory really return to the kernel (a malloc'ed 68 KiB block sits in the heap).
///
/// `budgetBytes` bounds what the pool hands out: `overBudget` tells the worker to stop
/// accepting new connections (they wait in the kernel's backlog, as at `max_connections`)
/// until buffers come back. Loop-bound: not Sendable.
public final class BufferPool {
    public let bufferSize: Int
    /// Most idle buffers kept at any time.
    public let maxPooled: Int
    /// Idle buffers `trim` keeps.
    public let keepIdle: Int
    /// Bytes handed out at or above which `overBudget` is true.
    public let budgetBytes: Int
    private var free: [UnsafeMutableRawPointer] = []
    /// Fewest idle buffers seen since the last trim: that many were not needed at all.
    private var minFree = 0
    /// Buffers mapped (in use or idle).
    public private(set) var allocated = 0

    public init(bufferSize: Int = 16 * 1024, maxPooled: Int = 1024, keepIdle: Int = 8,
                budgetBytes: Int = 256 * 1024 * 1024) {
        self.bufferSize = bufferSize
        self.maxPooled = maxPooled
        self.keepIdle = keepIdle
        self.budgetBytes = budgetBytes
        free.reserveCapacity(maxPooled)
    }

    deinit {
        for b in free { unmap(b) }
    }

    /// Buffers handed out and not yet released.
    public var inUse: Int { allocated - free.count }

    /// True when the buffers in use reach the budget.
    public var overBudget: Bool { inUse >= budgetBytes / bufferSize }

    /// Bytes mapped by this pool (in use and idle).
    public var mappedBytes: Int { allocated * bufferSize }

    /// Whether `trim` would give memory back (idle buffers above `keepIdle`).
    public var canTrim: Bool { free.count > keepIdle }

    /// A buffer of `bufferSize` bytes; give it back with `release`.
    @inline(__always)
    public func acquire() -> UnsafeMutableRawPointer {
        if let b = free.popLast() {
            if free.count < minFree { minFree = free.count }
            return b
        }
        minFree = 0
        allocated += 1
        return map()
    }

    @inline(__always)
    public func release(_ buffer: UnsafeMutableRawPointer) {
        if free.count < maxPooled {
            free.append(buffer)
        } else {
            allocated -= 1
            unmap(buffer)
        }
    }

    /// Gives back to the kernel the idle buffers that were not needed since the last trim
    /// (above `keepIdle`). Cheap when there is nothing to do.
    public func trim() {
        let surplus = min(minFree, free.count - keepIdle)
        if surplus > 0 {
            for _ in 0..<surplus {
                if let b = free.popLast() {
                    allocated -= 1
                    unmap(b)
                }
            }
        }
        minFree = free.count
    }

    private func map() -> UnsafeMutableRawPointer {
        let p = mmap(nil, bufferSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            // Out of address space or map count: fall back to the heap (which traps only if
            // it is out of memory too, as any allocation would).
            return .allocate(byteCount: bufferSize + BufferPool.heapTag, alignment: 4096) + BufferPool.heapTag
        }
        return p
    }

    /// Heap fallback buffers start `heapTag` bytes into a page-aligned block; mapped ones are
    /// page aligned, so the low bits tell them apart.
    private static let heapTag = 16

    private func unmap(_ b: UnsafeMutableRawPointer) {
        if UInt(bitPattern: b) % 4096 == 0 {
            munmap(b, bufferSize)
        } else {
            (b - BufferPool.heapTag).deallocate()
        }
    }
}

@available(*, unavailable)
extension BufferPool: Sendable {}
