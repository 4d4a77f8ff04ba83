import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One worker's access-log lines on their way to the log thread: a single-producer,
/// single-consumer ring of fixed-size slots. The worker formats a line into a slot (bytes
/// only, no allocation) and publishes it with one atomic store; the log thread writes
/// batches to the destinations. When the ring is full, lines are dropped and counted rather
/// than blocking the data path.
final class AccessLogRing: @unchecked Sendable {
    // @unchecked: slot memory is written only by the producer (the worker) before it
    // publishes `head`, and read only by the consumer (the log thread) before it
    // publishes `tail`; the atomics order the hand-over.
    static let slotSize = 1024
    static let slotCount = 4096

    private let storage: UnsafeMutableRawPointer
    private let lengths: UnsafeMutablePointer<Int32>
    private let destinations: UnsafeMutablePointer<Int32>
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)

    init() {
        storage = .allocate(byteCount: AccessLogRing.slotSize * AccessLogRing.slotCount, alignment: 64)
        lengths = .allocate(capacity: AccessLogRing.slotCount)
        destinations = .allocate(capacity: AccessLogRing.slotCount)
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
        destinations.deallocate()
    }

    /// Producer: a slot to format into, or nil when the ring is full.
    func reserve() -> UnsafeMutableRawBufferPointer? {
        let h = head.load(ordering: .relaxed)
        if h - tail.load(ordering: .acquiring) >= AccessLogRing.slotCount {
            dropped.add(1, ordering: .relaxed)
            return nil
        }
        return UnsafeMutableRawBufferPointer(start: storage + (h % AccessLogRing.slotCount) * AccessLogRing.slotSize,
                                             count: AccessLogRing.slotSize)
    }

    /// Producer: publishes the reserved slot holding `length` bytes for descriptor `fd`.
    func commit(length: Int, fd: Int32) {
        let h = head.load(ordering: .relaxed)
        lengths[h % AccessLogRing.slotCount] = Int32(length)
        destinations[h % AccessLogRing.slotCount] = fd
        head.store(h + 1, ordering: .releasing)
    }

    /// Consumer: writes every published line to its descriptor.
    func drain() {
        let h = head.load(ordering: .acquiring)
        var t = tail.load(ordering: .relaxed)
        while t < h {
            let i = t % AccessLogRing.slotCount
            var p = UnsafeRawPointer(storage + i * AccessLogRing.slotSize)
            var left = Int(lengths[i])
            while left > 0 {
                let n = write(destinations[i], p, left)
                if n <= 0 { break }
                p += n
                left -= n
            }
            t += 1
        }
        tail.store(t, ordering: .releasing)
    }
}

/// The thread that empties every worker's ring every 50 ms.
final class AccessLogWriter: Sendable {
    let rings: [AccessLogRing]
    private let stopping = Atomic<Bool>(false)

    init(workers: Int) {
        rings = (0..<workers).map { _ in AccessLogRing() }
    }

    func start() throws(Errno) -> WorkerThread {
        try WorkerThread(name: "sluice-log") { [self] in
            while !stopping.load(ordering: .acquiring) {
                for r in rings { r.drain() }
                usleep(50_000)  // batching interval of the log thread, off the data path
            }
            for r in rings { r.drain() }
        }
    }

    func stop() { stopping.store(true, ordering: .releasing) }
}

/// Appends JSON text into a fixed buffer without allocating; stops silently at the end.
struct LineWriter {
    let out: UnsafeMutableRawBufferPointer
    var count = 0

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        guard count < out.count - 1 else { return }  // keep room for the final newline
        out[count] = b
        count += 1
    }

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { for b in $0 { byte(b) } }
    }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes { byte(b) }
    }

    /// A JSON string value, escaped; at most `limit` source bytes.
    mutating func string(_ bytes: UnsafeRawBufferPointer, limit: Int = 512) {
        byte(UInt8(ascii: "\""))
        for b in bytes.prefix(limit) {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                byte(UInt8(ascii: "\\"))
                byte(b)
            case 0..<0x20, 0x7F...:
                // Control and non-ASCII bytes as \u00XX: the line stays valid JSON whatever came in.
                raw("\\u00")
                hexDigit(b >> 4)
                hexDigit(b & 0xF)
            default:
                byte(b)
            }
        }
        byte(UInt8(ascii: "\""))
    }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { string(UnsafeRawBufferPointer($0)) }
    }

    mutating func int(_ v: UInt64) {
        if v >= 10 { int(v / 10) }
        byte(UInt8(ascii: "0") + UInt8(v % 10))
    }

    private mutating func hexDigit(_ v: UInt8) {
        byte(v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10)
    }

    mutating func finishLine() {
        out[count] = UInt8(ascii: "\n")
        count += 1
    }
}
