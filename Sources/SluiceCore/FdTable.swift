/// Who owns a descriptor registered with a worker's (or the health checker's) epoll.
public enum FdOwner: UInt8, Sendable {
    case none = 0
    case listener
    case clientSide
    case targetSide
    case wakeup
    /// An HTTP client connection (index: its slot).
    case httpClient
    /// A connection to an HTTP target, busy or pooled (index: its slot).
    case upstream
    /// An active health check's socket, on the health checker's own table (index: the check's slot).
    case healthCheck
    /// An HTTP/2 client connection (index: its slot).
    case h2Client
    /// An HTTP/2 connection to a target of an `http2`/`grpc` group (index: its slot).
    case h2Upstream
    /// A UDP listener socket (index: the listener's index in the Plan).
    case udpListener
    /// A UDP flow's socket connected to its target (index: the flow's slot).
    case udpFlow
}

/// The worker's descriptor table: an array indexed by fd. Each slot carries a generation
/// that is packed with the fd into `epoll_data.u64`; an event whose generation no longer
/// matches belongs to a descriptor that was closed (and perhaps reused) since, and is dropped.
public struct FdTable {
    public struct Entry: Sendable {
        public var generation: UInt32 = 0
        public var owner: FdOwner = .none
        /// Index of the owning object (listener slot, connection slot).
        public var index: Int32 = -1
    }

    private var entries: [Entry]

    public init(initialCapacity: Int = 1024) {
        entries = Array(repeating: Entry(), count: initialCapacity)
    }

    /// Records `fd` as owned by (`owner`, `index`) and returns the token to register with epoll.
    @inline(__always)
    public mutating func register(_ fd: Int32, owner: FdOwner, index: Int32) -> UInt64 {
        let i = Int(fd)
        if i >= entries.count { grow(to: i + 1) }
        entries[i].generation &+= 1
        entries[i].owner = owner
        entries[i].index = index
        return FdTable.token(fd: fd, generation: entries[i].generation)
    }

    /// Forgets `fd` (call before closing it); later events carrying its old token are dropped.
    @inline(__always)
    public mutating func unregister(_ fd: Int32) {
        let i = Int(fd)
        guard i < entries.count else { return }
        entries[i].generation &+= 1
        entries[i].owner = .none
        entries[i].index = -1
    }

    /// The current generation of `fd`'s slot.
    public func generation(of fd: Int32) -> UInt32 {
        Int(fd) < entries.count ? entries[Int(fd)].generation : 0
    }

    /// The live entry for an epoll token, or nil when the token is stale.
    @inline(__always)
    public func lookup(_ token: UInt64) -> (fd: Int32, entry: Entry)? {
        let fd = Int32(truncatingIfNeeded: token & 0xFFFF_FFFF)
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        let i = Int(fd)
        guard i >= 0, i < entries.count else { return nil }
        let e = entries[i]
        guard e.generation == generation, e.owner != .none else { return nil }
        return (fd, e)
    }

    @inline(__always)
    public static func token(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    private mutating func grow(to count: Int) {
        var n = entries.count
        while n < count { n *= 2 }
        entries.append(contentsOf: repeatElement(Entry(), count: n - entries.count))
    }
}
