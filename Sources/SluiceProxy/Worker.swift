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

    var listenerFds: [Int32]
    var listenerPending: [Bool]
    var acceptPaused = false
    var peer = SocketAddress()

    var conns: [TCPConnection] = []
    var freeSlots: [Int32] = []
    var activeLocal = 0

    // L7
    var httpConns: [HTTPConnection] = []
    var freeHTTPSlots: [Int32] = []
    var upstreams: [UpstreamConnection] = []
    var freeUpstreamSlots: [Int32] = []
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
        listenerFds = bundle.listenerFds[seed.id]
        accessLogFds = bundle.accessLogFds
        listenerPending = Array(repeating: false, count: listenerFds.count)
        useSplice = seed.useSplice
        wakeFd = seed.wakeFd
        accessLog = seed.accessLog
        stats = seed.stats
        fired.reserveCapacity(256)
        routingVersion = seed.planStore.routingVersion
        rebuildBalancers(from: nil)
        for (i, fd) in listenerFds.enumerated() where fd >= 0 {
            try registerListener(fd, index: i)
        }
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
            wheel.advance(to: now, into: &fired)
            if !fired.isEmpty { fireTimers() }
            if listenerPending.contains(true) { acceptPending() }
            if now >= nextTrim { trimPools() }
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
        case .none, .healthCheck:  // health-check sockets live on the checker's own table
            break
        }
    }

    private func registerListener(_ fd: Int32, index: Int) throws(Errno) {
        let token = fds.register(fd, owner: .listener, index: Int32(index))
        try epoll.add(fd, events: [.readable, .edgeTriggered], data: token)
        listenerPending[index] = true  // connections may have queued before registration
    }

    /// Applies what the control plane published since the last turn: a new Plan, or new
    /// weights for the current one; then acknowledges the routing version.
    private func adoptRouting() {
        let version = store.routingVersion  // read first: everything published before it is visible
        if store.generation != plan.generation {
            adoptPlan()
        } else {
            refreshWeights()
        }
        routingVersion = version
        store.acknowledge(worker: id, routingVersion: version)
    }

    /// Gives the pickers the weights published in place. Keeps their rotation state and
    /// outstanding counts, and every pooled target connection.
    private func refreshWeights() {
        for (g, group) in plan.groups.enumerated() where g < groupWeights.count {
            let w = group.live.snapshot
            guard w !== groupWeights[g] else { continue }
            groupWeights[g] = w
            pickers[g].setWeights(w.weights)
            pickers[g].setMaglev(w.maglev)
        }
    }

    /// Switches to the published Plan: listeners that stayed keep their sockets, new ones
    /// are registered, removed ones closed (their connections finish on the old Plan).
    private func adoptPlan() {
        let bundle = store.bundle
        let newFds = stopDeadline == nil ? bundle.listenerFds[id] : Array(repeating: Int32(-1), count: bundle.plan.listeners.count)
        let kept = Set(newFds)
        for fd in listenerFds where fd >= 0 && !kept.contains(fd) {
            epoll.remove(fd)
            fds.unregister(fd)
            Posix.close(fd)
        }
        let old = Set(listenerFds)
        let oldPlan = plan
        plan = bundle.plan
        accessLogFds = bundle.accessLogFds
        listenerFds = newFds
        listenerPending = Array(repeating: false, count: newFds.count)
        for (i, fd) in newFds.enumerated() where fd >= 0 {
            if old.contains(fd) {
                _ = fds.register(fd, owner: .listener, index: Int32(i))  // same socket, new index
                let token = FdTable.token(fd: fd, generation: fds.generation(of: fd))
                try? epoll.modify(fd, events: [.readable, .edgeTriggered], data: token)
                listenerPending[i] = true
            } else {
                try? registerListener(fd, index: i)
            }
        }
        rebuildBalancers(from: oldPlan)
    }

    /// Closes connections to targets whose deregistration delay ran out.
    private func closeEvicted() {
        seenEvictions = process.evictions.load(ordering: .relaxed)
        for c in conns where c.state != .free && c.target >= 0 {
            if let p = c.plan, p.groups[c.group].targets[c.target].runtime.evicted.load(ordering: .relaxed) { close(c) }
        }
        for c in httpConns where c.state != .free {
            if let u = c.upstream, u.runtime?.evicted.load(ordering: .relaxed) == true {
                releaseUpstream(c, reusable: false)
                closeHTTP(c)
            }
        }
    }

    /// Fresh per-worker balancer state for the current plan. Pooled target connections move
    /// to the new Plan's indices (same group name and target address); only those to targets
    /// the new Plan no longer has are closed.
    private func rebuildBalancers(from old: Plan?) {
        groupWeights = plan.groups.map { $0.live.snapshot }
        pickers = plan.groups.indices.map { g in
            TargetPicker(algorithm: plan.groups[g].algorithm, weights: groupWeights[g].weights,
                         maglev: groupWeights[g].maglev, seed: traceSeed &+ UInt64(id))
        }
        groupChoosers = plan.listeners.map { SmoothWeightedRoundRobin(weights: $0.forward.map(\.weight)) }
        actionChoosers = plan.listeners.map { l in
            l.actions.map { a in
                if case .forward(let groups) = a { return SmoothWeightedRoundRobin(weights: groups.map(\.weight)) }
                return SmoothWeightedRoundRobin(weights: [])
            }
        }
        var pool = plan.groups.map { g in Array(repeating: [Int32](), count: g.targets.count) }
        if let old {
            let groupIndex = Dictionary(plan.groups.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            for (og, perGroup) in idlePool.enumerated() where og < old.groups.count {
                let ng = groupIndex[old.groups[og].name]
                let keys = ng.map { g in
                    Dictionary(plan.groups[g].targets.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { a, _ in a })
                }
                for (ot, slots) in perGroup.enumerated() where !slots.isEmpty {
                    guard ot < old.groups[og].targets.count, let ng, let nt = keys?[old.groups[og].targets[ot].key] else {
                        for slot in slots { discard(upstreams[Int(slot)]) }
                        continue
                    }
                    for slot in slots {
                        let u = upstreams[Int(slot)]
                        u.group = ng
                        u.target = nt
                        u.planGeneration = plan.generation
                        u.runtime = plan.groups[ng].targets[nt].runtime
                        pool[ng][nt].append(slot)
                    }
                }
            }
        }
        idlePool = pool
    }

    private func fireTimers() {
        for token in fired {
            if token & Worker.httpTimerBit != 0 {
                let c = httpConns[Int(token & 0x7FFF_FFFF)]
                if c.generation == UInt32(truncatingIfNeeded: token >> 32), c.state != .free { httpTimerFired(c) }
                continue
            }
            let c = conns[Int(token & 0xFFFF_FFFF)]
            guard c.generation == UInt32(truncatingIfNeeded: token >> 32), c.state != .free else { continue }
            if c.timerAt <= now { c.timerAt = 0 }
            if now < c.nextDeadline {
                armTimer(c)  // no-op while a later entry is still pending
            } else if c.state == .connecting {
                connectFailed(c)
            } else {
                close(c)  // idle timeout
            }
        }
        fired.removeAll(keepingCapacity: true)
    }

    /// Makes sure a wheel entry will fire by `c.nextDeadline`. A connection has at most two
    /// entries: deadlines only move later, except that the idle deadline after connecting
    /// may come before the connect deadline that was scheduled.
    @inline(__always)
    func armTimer(_ c: TCPConnection) {
        let deadline = c.nextDeadline
        guard c.timerAt == 0 || deadline < c.timerAt else { return }
        c.timerAt = deadline
        wheel.schedule(c.timerToken, at: deadline)
    }

    // MARK: accepting

    private func acceptPending() {
        acceptPaused = false
        for i in listenerPending.indices where listenerPending[i] { acceptAll(listener: i) }
    }

    private func acceptAll(listener index: Int) {
        let fd = listenerFds[index]
        guard fd >= 0 else { return }
        var budget = Worker.acceptBatch
        while budget > 0 {
            if process.activeConnections.load(ordering: .relaxed) >= process.maxConnections
                || httpBuffers.overBudget || buffers.overBudget {
                // At the connection limit or the buffer budget: new clients wait in the
                // kernel's backlog until connections end or buffers come back.
                pauseAccepting(index)
                return
            }
            budget -= 1
            let result: IOResult<Int32>
            do {
                result = try Posix.accept(fd, address: &peer)
            } catch {
                if Worker.isResourceShortage(error) {
                    pauseAccepting(index)
                    return
                }
                continue  // ECONNABORTED and friends: that client is gone
            }
            switch result {
            case .wouldBlock:
                listenerPending[index] = false
                return
            case .processed(let client):
                if plan.listeners[index].isHTTP {
                    openHTTP(client: client, listener: index)
                } else {
                    open(client: client, listener: index)
                }
            }
        }
        listenerPending[index] = true
    }

    private func pauseAccepting(_ index: Int) {
        listenerPending[index] = true
        acceptPaused = true
    }

    static func isResourceShortage(_ e: Errno) -> Bool {
        e == Errno(EMFILE) || e == Errno(ENFILE) || e == Errno(ENOBUFS) || e == Errno(ENOMEM)
    }

    private func beginStop() {
        for (i, fd) in listenerFds.enumerated() where fd >= 0 {
            epoll.remove(fd)
            fds.unregister(fd)
            Posix.close(fd)
            listenerFds[i] = -1
            listenerPending[i] = false
        }
        stopDeadline = now &+ process.shutdownGrace
    }

    private func closeAll() {
        for c in conns where c.state != .free { close(c) }
        for c in httpConns where c.state != .free { closeHTTP(c) }
    }
}

@available(*, unavailable)
extension Worker: Sendable {}
