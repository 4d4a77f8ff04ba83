import Synchronization

/// Holds the current Plan. Workers check `routingVersion` with one atomic load per loop turn
/// and look further only when it moved, so publishing never stalls the data path.
///
/// Two kinds of change reach workers: a new Plan (reload, a target added or removed), and new
/// weights for the groups of the current Plan (health, slow start, draining, zones,
/// fail-open), published in place in each group's `WeightCell`. Both bump `routingVersion`;
/// a worker acknowledges the version it has applied, which is how the control plane knows
/// that no worker can pick a draining target any more.
public final class PlanStore: Sendable {
    /// A Plan with each worker's listening descriptors for it (`[worker][listener]`, -1
    /// where the listener has no socket of that kind).
    public struct Bundle: Sendable {
        public var plan: Plan
        /// TCP listening sockets (every listener but udp ones).
        public var listenerFds: [[Int32]]
        /// UDP sockets (udp and tcp_udp listeners).
        public var udpFds: [[Int32]]
        /// Per listener: where its access log goes (-1: off).
        public var accessLogFds: [Int32]
    }

    private let current: Mutex<Bundle>
    private let published: Atomic<UInt64>
    private let routing = Atomic<UInt64>(1)
    /// Per worker: the generation it runs on (acknowledged after adopting a Plan).
    private let acks: [WorkerAck]

    final class WorkerAck: Sendable {
        let generation = Atomic<UInt64>(0)
    }

    public init(_ plan: Plan, listenerFds: [[Int32]], udpFds: [[Int32]], accessLogFds: [Int32]) {
        current = Mutex(Bundle(plan: plan, listenerFds: listenerFds, udpFds: udpFds, accessLogFds: accessLogFds))
        published = Atomic(plan.generation)
        acks = listenerFds.map { _ in WorkerAck() }
    }

    public var generation: UInt64 { published.load(ordering: .acquiring) }

    public var plan: Plan { current.withLock { $0.plan } }

    public var bundle: Bundle { current.withLock { $0 } }

    /// Bumped by every publish (Plan or weights); workers compare it once per loop turn.
    public var routingVersion: UInt64 { routing.load(ordering: .acquiring) }

    /// Makes `plan` the one new connections use. Returns the routing version that carries it.
    @discardableResult
    public func publish(_ plan: Plan, listenerFds: [[Int32]], udpFds: [[Int32]], accessLogFds: [Int32]) -> UInt64 {
        current.withLock { $0 = Bundle(plan: plan, listenerFds: listenerFds, udpFds: udpFds, accessLogFds: accessLogFds) }
        published.store(plan.generation, ordering: .releasing)
        return routing.add(1, ordering: .acquiringAndReleasing).newValue
    }

    /// Tells workers that weight cells of the current Plan changed (they were published before
    /// this call). Returns the routing version that carries them.
    func weightsPublished() -> UInt64 {
        routing.add(1, ordering: .acquiringAndReleasing).newValue
    }

    func acknowledge(worker: Int, routingVersion: UInt64) {
        acks[worker].generation.store(routingVersion, ordering: .releasing)
    }

    /// True once every worker has applied routing version `version` or later: no worker can
    /// pick with older weights or an older Plan for new traffic any more.
    public func allWorkersAdopted(_ version: UInt64) -> Bool {
        acks.allSatisfy { $0.generation.load(ordering: .acquiring) >= version }
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
