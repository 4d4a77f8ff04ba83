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
        if let p = free.popLast() { return p }
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

    func close(_ pipe: Pipe) {
        Posix.close(pipe.readEnd)
        Posix.close(pipe.writeEnd)
    }
}

@available(*, unavailable)
extension PipePool: Sendable {}
