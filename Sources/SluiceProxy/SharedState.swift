import Synchronization

/// Holds the current Plan. Workers check `generation` with one atomic load per loop turn and
/// take the lock only when it moved, so publishing never stalls the data path.
public final class PlanStore: Sendable {
    private let current: Mutex<Plan>
    private let published: Atomic<UInt64>

    public init(_ plan: Plan) {
        current = Mutex(plan)
        published = Atomic(plan.generation)
    }

    public var generation: UInt64 { published.load(ordering: .acquiring) }

    public var plan: Plan { current.withLock { $0 } }

    /// Makes `plan` the one new connections use.
    public func publish(_ plan: Plan) {
        current.withLock { $0 = plan }
        published.store(plan.generation, ordering: .releasing)
    }
}

/// State every thread of the process shares: the stop request and the connection count
/// that enforces `node.max_connections`.
public final class ProcessState: Sendable {
    public let stopping = Atomic<Bool>(false)
    /// Open client connections across all workers.
    public let activeConnections = Atomic<Int>(0)
    public let maxConnections: Int
    /// Nanoseconds workers wait for open connections after a stop request.
    public let shutdownGrace: UInt64

    public init(maxConnections: Int, shutdownGrace: UInt64) {
        self.maxConnections = maxConnections
        self.shutdownGrace = shutdownGrace
    }
}
