import SluiceCore

/// A kernel pipe used to splice bytes from one socket to another. Owns both ends: they close
/// when the pipe is dropped, unless it goes back to the pool (`PipePool.release`).
struct Pipe: ~Copyable {
    var readEnd: Descriptor
    var writeEnd: Descriptor
    /// Bytes the pipe can hold (what `F_GETPIPE_SZ` reported).
    var capacity: Int
}

/// A worker's pool of empty pipes. A connection holds a pipe only while bytes are in it, so
/// idle connections cost no pipe descriptors; pipes are created when the pool runs dry and
/// recycled up to `maxPooled`.
///
/// The pool owns the descriptors of its idle pipes. They are kept as plain numbers because
/// an `Array` cannot hold non-copyable elements: a pipe's ends become `Descriptor`s again
/// when `acquire` hands it out, and `deinit`/`trim` close what the pool keeps.
final class PipePool {
    /// Requested pipe buffer size (the kernel may grant less for unprivileged users).
    static let requestedSize = 256 * 1024

    private struct Idle {
        var readEnd: Int32
        var writeEnd: Int32
        var capacity: Int
    }

    private var free: [Idle] = []
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
        for p in free { PipePool.close(p) }
    }

    /// An empty pipe, or nil when the process is out of descriptors.
    @inline(__always)
    func acquire() -> Pipe? {
        if let p = free.popLast() {
            if free.count < minFree { minFree = free.count }
            return Pipe(readEnd: Descriptor(taking: p.readEnd), writeEnd: Descriptor(taking: p.writeEnd),
                        capacity: p.capacity)
        }
        minFree = 0
        guard let (r, w) = try? Posix.pipe(size: PipePool.requestedSize) else { return nil }
        created += 1
        return Pipe(readEnd: Descriptor(taking: r), writeEnd: Descriptor(taking: w), capacity: Posix.pipeSize(w))
    }

    /// Takes back a pipe that is EMPTY; a pipe still holding bytes must be dropped instead
    /// (its ends close).
    @inline(__always)
    func release(_ pipe: consuming Pipe) {
        if free.count < maxPooled {
            let capacity = pipe.capacity
            free.append(Idle(readEnd: pipe.readEnd.release(), writeEnd: pipe.writeEnd.release(), capacity: capacity))
        } else {
            _ = consume pipe  // closes both ends
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
                    PipePool.close(p)
                }
            }
        }
        minFree = free.count
    }

    private static func close(_ pipe: Idle) {
        Posix.close(pipe.readEnd)
        Posix.close(pipe.writeEnd)
    }
}

@available(*, unavailable)
extension PipePool: Sendable {}
