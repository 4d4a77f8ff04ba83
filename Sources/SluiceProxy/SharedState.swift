import Synchronization

/// Holds the current Plan. Workers check `generation` with one atomic load per loop turn and
/// take the lock only when it moved, so publishing never stalls the data path.
public final class PlanStore: Sendable {
    /// A Plan with each worker's listening descriptors for it (`[worker][listener]`).
    public struct Bundle: Sendable {
        public var plan: Plan
        public var listenerFds: [[Int32]]
        /// Per listener: where its access log goes (-1: off).
        public var accessLogFds: [Int32]
    }

    private let current: Mutex<Bundle>
    private let published: Atomic<UInt64>
    /// Per worker: the generation it runs on (acknowledged after adopting a Plan).
    private let acks: [WorkerAck]

    final class WorkerAck: Sendable {
        let generation = Atomic<UInt64>(0)
    }

    public init(_ plan: Plan, listenerFds: [[Int32]], accessLogFds: [Int32]) {
        current = Mutex(Bundle(plan: plan, listenerFds: listenerFds, accessLogFds: accessLogFds))
        published = Atomic(plan.generation)
        acks = listenerFds.map { _ in WorkerAck() }
    }

    public var generation: UInt64 { published.load(ordering: .acquiring) }

    public var plan: Plan { current.withLock { $0.plan } }

    public var bundle: Bundle { current.withLock { $0 } }

    /// Makes `plan` the one new connections use.
    public func publish(_ plan: Plan, listenerFds: [[Int32]], accessLogFds: [Int32]) {
        current.withLock { $0 = Bundle(plan: plan, listenerFds: listenerFds, accessLogFds: accessLogFds) }
        published.store(plan.generation, ordering: .releasing)
    }

    func acknowledge(worker: Int, generation: UInt64) {
        acks[worker].generation.store(generation, ordering: .releasing)
    }

    /// True once every worker runs on `generation` or later: no worker can pick from an
    /// older Plan for new traffic any more.
    public func allWorkersAdopted(_ generation: UInt64) -> Bool {
        acks.allSatisfy { $0.generation.load(ordering: .acquiring) >= generation }
    }
}

/// State every thread of the process shares: the stop request and the connection count
/// that enforces `node.max_connections`.
public final class ProcessState: Sendable {
    public let stopping = Atomic<Bool>(false)
    /// Bumped when targets were evicted: workers then close connections to them.
    public let evictions = Atomic<UInt64>(0)
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
