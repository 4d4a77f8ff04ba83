import SluiceBalancer
import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a worker thread starts from. Only `Sendable` values: descriptors as integers and
/// shared objects built for crossing threads.
public struct WorkerSeed: Sendable {
    public let id: Int
    /// Written by the control thread to wake the worker (stop, new plan).
    public let wakeFd: Int32
    public let planStore: PlanStore
    public let process: ProcessState
    /// False forces read/write copying instead of `splice` (diagnostics, benchmarks).
    public let useSplice: Bool
    let accessLog: AccessLogRing?
    let stats: StatsBlock

    init(id: Int, wakeFd: Int32, planStore: PlanStore, process: ProcessState, useSplice: Bool,
         accessLog: AccessLogRing?, stats: StatsBlock) {
        self.accessLog = accessLog
        self.stats = stats
        self.id = id
        self.wakeFd = wakeFd
        self.planStore = planStore
        self.process = process
        self.useSplice = useSplice
    }
}

/// Plain per-worker counters, summed at scrape time.
struct WorkerCounters {
    var requests: UInt64 = 0
    var responses: UInt64 = 0
    var ownResponses: UInt64 = 0
    var retries: UInt64 = 0
    /// Requests by desync class (compliant, acceptable, ambiguous, severe).
    var desync: [UInt64] = [0, 0, 0, 0]
}

/// One event-loop thread: its own epoll, descriptor table, timer wheel, connection slab,
/// pipe and buffer pools and balancer state. Shares nothing mutable with other workers; the
/// only cross-thread reads are the Plan generation and the process-wide atomics.
final class Worker {
    /// Connections accepted per listener event before other events get a turn.
    static let acceptBatch = 64
    /// Longest sleep while accepting is paused (connection limit or descriptor shortage).
    static let pausedPollMillis: Int32 = 10
    /// Tries per connection: the first target plus two more after connect failures.
    static let maxConnectAttempts = 3
    /// How often idle pooled buffers and pipes not needed since the last time are given back.
    static let trimInterval: UInt64 = 1_000_000_000

    let id: Int
    let epoll: Epoll
    var fds = FdTable()
    var wheel: TimerWheel
    var fired: [UInt64] = []
    var now: UInt64

    let store: PlanStore
    let process: ProcessState
    var plan: Plan
    /// The routing version (`PlanStore.routingVersion`) this worker has applied.
    var routingVersion: UInt64 = 0
    var pickers: [TargetPicker] = []
    /// Per group of `plan`: the weights `pickers` were last given (identity tells a change).
    var groupWeights: [GroupWeights] = []
    /// Per listener: chooses among weighted groups of a split `forward`.
    var groupChoosers: [SmoothWeightedRoundRobin] = []

    /// Per listener of `plan`: this worker's socket (nil when it has none, e.g. stopping).
    var listeners: [ListenerSocket?] = []
    var listenerPending: [Bool]
    var acceptPaused = false
    var peer = SocketAddress()

    // UDP
    /// Per listener of `plan`: this worker's UDP socket (udp, tcp_udp listeners).
    var udpListeners: [UDPListenerSocket?] = []
    /// Some UDP listener socket stopped reading at its budget (`UDPListenerSocket.pending`).
    var udpReadPending = false
    var udpFlows: [UDPFlow] = []
    var freeUDPSlots: [Int32] = []
    var flowTable: UDPFlowTable
    /// Datagrams from clients (read, then sent on to targets) and replies (read from targets,
    /// sent to clients at the end of the turn); mapped with the first UDP listener.
    var udpIn: DatagramBatch?
    var udpOut: DatagramBatch?
    /// Replies gathered in `udpOut` this turn, the listener socket they leave through and its
    /// counter id.
    var udpOutCount = 0
    var udpOutFd: Int32 = -1
    var udpOutStatsId = -1
    /// Per entry of `udpIn`: the flow slot of the datagram (-1: dropped) and its length.
    var udpSlots = [Int32](repeating: -1, count: Worker.udpBatchSize)
    var udpLengths = [Int](repeating: 0, count: Worker.udpBatchSize)
    /// Worker count: a listener's `max_flows` is shared out over the workers.
    let workerCount: Int

    var conns: [TCPConnection] = []
    var freeSlots: [Int32] = []
    var activeLocal = 0

    // L7
    var httpConns: [HTTPConnection] = []
    var freeHTTPSlots: [Int32] = []
    var upstreams: [UpstreamConnection] = []
    var freeUpstreamSlots: [Int32] = []
    // HTTP/2 to clients
    var h2Conns: [H2Connection] = []
    var freeH2Slots: [Int32] = []
    var h2StreamPool: [H2Stream] = []
    // HTTP/2 to targets
    var h2Upstreams: [H2Upstream] = []
    var freeH2UpstreamSlots: [Int32] = []
    var h2UpstreamStreamPool: [H2UpstreamStream] = []
    /// Stream pipes whose stream session wrote or read since the last loop turn.
    let pipeQueue = StreamPipeQueue()
    /// Idle target connections by group and target (upstream slots).
    var idlePool: [[[Int32]]] = []
    /// Per listener, per action: chooses among the weighted groups of a split forward.
    var actionChoosers: [[SmoothWeightedRoundRobin]] = []
    /// Reused header views for the rule matcher.
    var factHeaders: [(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)] = []
    let httpBuffers = BufferPool(bufferSize: 64 * 1024 + 4096)
    var traceCounter: UInt64 = 0
    let traceSeed = Posix.monotonicNanos()
    var counters = WorkerCounters()
    var accessLogFds: [Int32]
    let accessLog: AccessLogRing?
    let stats: StatsBlock

    let pipes = PipePool()
    let buffers = BufferPool()
    let useSplice: Bool
    let wakeFd: Int32
    var stopDeadline: UInt64?
    var seenEvictions: UInt64 = 0
    /// Surge queues: handoffs taken from this worker's mailbox (reused), the groups of
    /// `plan` that have a queue, and when the next sweep of non-empty queues is due.
    var surgeMail: [SurgeHandoff] = []
    var surgeGroups: [Int] = []
    var nextSurgeSweep: UInt64 = 0
    var nextTrim: UInt64 = 0

    init(seed: WorkerSeed) throws(Errno) {
        id = seed.id
        epoll = try Epoll(capacity: 512)
        now = Posix.monotonicNanos()
        wheel = TimerWheel(now: now)
        store = seed.planStore
        process = seed.process
        let bundle = seed.planStore.bundle
        plan = bundle.plan
        let listenerFds = bundle.listenerFds[seed.id]
        accessLogFds = bundle.accessLogFds
        listenerPending = Array(repeating: false, count: listenerFds.count)
        useSplice = seed.useSplice
        wakeFd = seed.wakeFd
        accessLog = seed.accessLog
        stats = seed.stats
        fired.reserveCapacity(256)
        routingVersion = seed.planStore.routingVersion
        workerCount = bundle.listenerFds.count
        flowTable = UDPFlowTable(seed: Posix.monotonicNanos() &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(seed.id))
        rebuildBalancers(from: nil)
        listeners = listenerFds.map { $0 >= 0 ? ListenerSocket(taking: $0) : nil }
        for case let (i, l?) in listeners.enumerated() { try registerListener(l, index: i) }
        udpListeners = adoptUDPSockets(bundle.udpFds[seed.id], kept: [:])
        store.acknowledge(worker: id, routingVersion: routingVersion)
        let token = fds.register(wakeFd, owner: .wakeup, index: 0)
        try epoll.add(wakeFd, events: [.readable], data: token)
    }

    /// Runs until a stop request has been served: listeners closed and every connection
    /// finished or cut at the end of the grace period.
    func run() {
        while true {
            if store.routingVersion != routingVersion { adoptRouting() }
            if process.evictions.load(ordering: .relaxed) != seenEvictions { closeEvicted() }
            let n = epoll.wait(timeoutMillis: pollTimeout())
            now = Posix.monotonicNanos()
            for i in 0..<n {
                let e = epoll.event(at: i)
                dispatch(token: e.data, events: e.events)
            }
            if udpOutCount > 0 { flushReplies() }
            if udpReadPending { readPendingUDP() }
            wheel.advance(to: now, into: &fired)
            if !fired.isEmpty { fireTimers() }
            if !pipeQueue.isEmpty { flushStreamPipes() }
            if listenerPending.contains(true) { acceptPending() }
            if now >= nextTrim { trimPools() }
            if !surgeGroups.isEmpty && now >= nextSurgeSweep { sweepSurgeQueues() }
            if stopDeadline == nil, process.stopping.load(ordering: .relaxed) { beginStop() }
            if let deadline = stopDeadline {
                if activeLocal == 0 { break }
                if now >= deadline {
                    closeAll()
                    break
                }
            }
        }
    }

    private func pollTimeout() -> Int32 {
        var timeout = wheel.nextTimeoutMillis(now: now)
        if listenerPending.contains(true) {
            timeout = acceptPaused ? clamp(timeout, Worker.pausedPollMillis) : 0
        }
        if udpReadPending { timeout = 0 }
        if !surgeGroups.isEmpty && surgeWaiting { timeout = clamp(timeout, Worker.surgeSweepMillis) }
        if stopDeadline != nil { timeout = clamp(timeout, 100) }
        if httpBuffers.canTrim || buffers.canTrim || pipes.canTrim {
            // Wake up to give idle memory back even when nothing else happens.
            timeout = clamp(timeout, Int32(Worker.trimInterval / 1_000_000))
        }
        return timeout
    }

    /// Gives back idle buffers and pipes that were not needed for a whole interval.
    private func trimPools() {
        httpBuffers.trim()
        buffers.trim()
        pipes.trim()
        nextTrim = now &+ Worker.trimInterval
    }

    private func clamp(_ timeout: Int32, _ limit: Int32) -> Int32 {
        timeout < 0 ? limit : min(timeout, limit)
    }

    @inline(__always)
    private func dispatch(token: UInt64, events: EpollEvents) {
        guard let (fd, entry) = fds.lookup(token) else { return }
        switch entry.owner {
        case .listener:
            acceptAll(listener: Int(entry.index))
        case .clientSide:
            clientEvent(conns[Int(entry.index)], events)
        case .targetSide:
            serverEvent(conns[Int(entry.index)], events)
        case .httpClient:
            httpClientEvent(httpConns[Int(entry.index)], events)
        case .upstream:
            upstreamEvent(upstreams[Int(entry.index)], events)
        case .wakeup:
            Posix.drainEventfd(fd)
            takeSurgeHandoffs()
        case .h2Client:
            h2ClientEvent(slot: entry.index, events)
        case .h2Upstream:
            h2UpstreamEvent(slot: entry.index, events)
        case .udpListener:
            udpListenerReadable(Int(entry.index))
        case .udpFlow:
            udpFlowReadable(slot: entry.index)
        case .none, .healthCheck:  // health-check sockets live on the checker's own table
            break
        }
    }

    /// End of the grace period: cuts every connection still open.
    func closeAll() {
        stopUDP()
        for c in conns where c.state != .free { close(c) }
        for h in h2Conns where h.state != .free { closeH2(h) }
        for h in h2Upstreams where h.state != .free { closeH2Upstream(h) }
        for c in httpConns where c.state != .free { closeHTTP(c) }
    }
}

@available(*, unavailable)
extension Worker: Sendable {}
