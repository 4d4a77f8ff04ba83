import SluiceCore

/// A kernel pipe used to splice bytes from one socket to another.
struct Pipe {
    var readEnd: Int32
    var writeEnd: Int32
    /// Bytes the pipe can hold (what `F_GETPIPE_SZ` reported).
    var capacity: Int

    static let none = Pipe(readEnd: -1, writeEnd: -1, capacity: 0)
    var isOpen: Bool { readEnd >= 0 }
}

/// A worker's pool of empty pipes. A connection holds a pipe only while bytes are in it, so
/// idle connections cost no pipe descriptors; pipes are created when the pool runs dry and
/// recycled up to `maxPooled`.
final class PipePool {
    /// Requested pipe buffer size (the kernel may grant less for unprivileged users).
    static let requestedSize = 256 * 1024

    private var free: [Pipe] = []
    let maxPooled: Int
    /// Idle pipes `trim` keeps.
    let keepIdle = 8
    /// Fewest idle pipes since the last trim: that many were not needed at all.
    private var minFree = 0
    private(set) var created = 0

    init(maxPooled: Int = 256) {
        self.maxPooled = maxPooled
        free.reserveCapacity(maxPooled)
    }

    deinit {
        for p in free { close(p) }
    }

    /// An empty pipe, or nil when the process is out of descriptors.
    @inline(__always)
    func acquire() -> Pipe? {
        if let p = free.popLast() {
            if free.count < minFree { minFree = free.count }
            return p
        }
        minFree = 0
        guard let (r, w) = try? Posix.pipe(size: PipePool.requestedSize) else { return nil }
        created += 1
        return Pipe(readEnd: r, writeEnd: w, capacity: Posix.pipeSize(w))
    }

    /// Takes back a pipe that is EMPTY; a pipe still holding bytes must be `close`d instead.
    @inline(__always)
    func release(_ pipe: Pipe) {
        if free.count < maxPooled {
            free.append(pipe)
        } else {
            close(pipe)
        }
    }

    /// Whether `trim` would close idle pipes.
    var canTrim: Bool { free.count > keepIdle }

    /// Closes the idle pipes not needed since the last trim (above `keepIdle`): their
    /// descriptors and kernel buffers go back when load falls.
    func trim() {
        let surplus = min(minFree, free.count - keepIdle)
        if surplus > 0 {
            for _ in 0..<surplus {
                if let p = free.popLast() {
                    created -= 1
                    close(p)
                }
            }
        }
        minFree = free.count
    }

    func close(_ pipe: Pipe) {
        Posix.close(pipe.readEnd)
        Posix.close(pipe.writeEnd)
    }
}

@available(*, unavailable)
extension PipePool: Sendable {}
