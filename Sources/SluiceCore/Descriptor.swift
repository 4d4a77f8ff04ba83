#if canImport(Glibc)
import Glibc
#endif

/// An open file descriptor with exactly one owner: it closes once, when its owner lets it go
/// (`close()`) or drops it. Not copyable, so two owners cannot both close it; code that only
/// needs the number borrows `raw` for a system call.
public struct Descriptor: ~Copyable {
    public let raw: Int32

    /// Takes ownership of `raw` (which must be open and owned by nobody else).
    public init(taking raw: Int32) { self.raw = raw }

    /// Closes now.
    public consuming func close() {
        Posix.close(raw)
        discard self
    }

    /// Gives the descriptor up without closing it (to a new owner, e.g. a pool).
    public consuming func release() -> Int32 {
        let fd = raw
        discard self
        return fd
    }

    deinit { Posix.close(raw) }
}
