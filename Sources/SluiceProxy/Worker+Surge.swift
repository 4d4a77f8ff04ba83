import SluiceBalancer
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// The surge queue on a worker (SPEC §12, docs/surge-queue.md): `max_per_target` turns a
/// pick into a reservation of a slot (`TargetRuntime.reserve`); a request (L7) or connection
/// (L4) that finds every eligible target full, or no target at all, waits in its group's
/// `SurgeQueue`. A worker that frees a slot while someone waits hands the slot (still counted)
/// to the head waiter's worker through its mailbox and eventfd (`TargetRuntime.handOn`); the
/// receiving worker connects the waiter to that target. Targets that appear or gain room
/// (new weights, a new Plan, a reload raising `max_per_target`) are found by
/// `dispatchSurge`, run after every routing change and by a sweep while a queue is non-empty.
/// Slow path only: nothing here runs while the queues are empty.
extension Worker {
    /// How often a worker looks at its groups' non-empty queues for a target with room.
    static let surgeSweepMillis: Int32 = 50
    static let surgeSweepInterval: UInt64 = 50_000_000

    /// Some queue of the current Plan has waiters (one relaxed load per queue).
    var surgeWaiting: Bool {
        for g in surgeGroups where plan.groups[g].surgeHasWaiters { return true }
        return false
    }

    /// Reserves a slot after `pickTarget` chose `t` under `max_per_target`: `t` when it has
    /// room, else the next target (in index order after it) with weight, not in `tried`, and
    /// room. Full targets are skipped without counting as tried. Nil when all are full.
    @inline(__always)
    func reserveSlot(group: Int, from t: Int, tried: TriedTargets) -> Int? {
        let targets = plan.groups[group].targets
        let limit = plan.groups[group].maxPerTarget
        if targets[t].runtime.reserve(limit: limit) { return t }
        return reserveOther(group: group, after: t, tried: tried)
    }

    private func reserveOther(group: Int, after t: Int, tried: TriedTargets) -> Int? {
        let targets = plan.groups[group].targets
        let limit = plan.groups[group].maxPerTarget
        let weights = groupWeights[group].weights
        let n = targets.count
        var i = t + 1
        for _ in 1..<max(n, 1) {
            if i >= n { i = 0 }
            if i < weights.count, weights[i] > 0, !tried.contains(i), targets[i].runtime.reserve(limit: limit) { return i }
            i += 1
        }
        return nil
    }

    /// Hands free slots of `group` (worker's `plan`) to its waiters while a target has room.
    func dispatchSurge(group g: Int) {
        guard g < plan.groups.count, let q = plan.groups[g].surge else { return }
        var rounds = 0
        while !q.isEmpty && rounds < 1024 {
            rounds += 1
            var tried = TriedTargets()
            guard let t = pickTarget(group: g, tried: &tried, choice: TargetChoice(hash: UInt64(truncatingIfNeeded: rounds)))
            else { return }
            let runtime = plan.groups[g].targets[t].runtime
            // Under max_per_target the pick reserved the slot; else count the one handed on.
            if plan.groups[g].maxPerTarget == 0 { runtime.inFlight.add(1, ordering: .relaxed) }
            runtime.handOn()
        }
    }

    func sweepSurgeQueues() {
        nextSurgeSweep = now &+ Worker.surgeSweepInterval
        for g in surgeGroups { dispatchSurge(group: g) }
    }

    /// The eventfd said there may be mail: serve each handoff.
    func takeSurgeHandoffs() {
        SurgeQueues.shared.take(worker: id, into: &surgeMail)
        guard !surgeMail.isEmpty else { return }
        for h in surgeMail {
            switch h.waiter.layer {
            case .http: httpHandoff(h)
            case .tcp: tcpHandoff(h)
            }
        }
        surgeMail.removeAll(keepingCapacity: true)
    }

    /// Index in the worker's `plan` of `runtime` in `group`, when it may take new traffic.
    private func usableTarget(_ runtime: TargetRuntime, group: Int) -> Int? {
        guard group < plan.groups.count,
              let t = plan.groups[group].targets.firstIndex(where: { $0.runtime === runtime }),
              t < groupWeights[group].weights.count, groupWeights[group].weights[t] > 0 else { return nil }
        return t
    }

    // MARK: L7

    private func waiter(_ c: HTTPConnection) -> SurgeWaiter {
        SurgeWaiter(worker: Int32(truncatingIfNeeded: id), layer: .http, slot: c.slot, generation: c.generation,
                    since: c.exchange.surgeSince)
    }

    /// Puts the exchange in `q` (at the head when it was its turn and the slot it was given
    /// is gone). A full queue answers 503 at once.
    func enqueue(_ c: HTTPConnection, _ q: SurgeQueue, atHead: Bool) {
        let g = plan(of: c).groups[c.exchange.group]
        if c.exchange.surgeSince == 0 { c.exchange.surgeSince = now }
        let w = waiter(c)
        if atHead {
            q.requeue(w)
        } else if !q.enqueue(w, limit: g.surgeSize) {
            stats.surgeOverflowed(group: g.statsId)
            c.exchange.retryAfter = true  // a full queue: come back in a second, as after a timeout
            perform(c, c.exchange.machine.fail(status: 503))
            return
        }
        c.exchange.surgeQueued = true
        c.exchange.surgeQueue = q
        c.exchange.surgeDeadline = c.exchange.surgeSince &+ g.surgeTimeout
        armHTTPTimer(c)
        // A slot freed just before this waiter arrived would wait for the sweep otherwise.
        if c.exchange.group < plan.groups.count, plan.groups[c.exchange.group] === g { dispatchSurge(group: c.exchange.group) }
    }

    /// The exchange leaves its queue for good (client gone, timeout): counted in the wait
    /// histogram. A handoff already on its way finds it gone and passes the slot on.
    func leaveQueue(_ c: HTTPConnection) {
        guard c.exchange.surgeQueued, let q = c.exchange.surgeQueue else { return }
        _ = q.remove(waiter(c))
        c.exchange.surgeQueued = false
        c.exchange.surgeQueue = nil
        stats.surgeWait(group: plan(of: c).groups[c.exchange.group].statsId, nanos: now &- c.exchange.surgeSince)
    }

    /// The queue timeout: 503 with `Retry-After: 1`.
    func surgeTimedOut(_ c: HTTPConnection) {
        leaveQueue(c)
        stats.surgeTimedOut(listener: plan(of: c).listeners[c.listener].statsId)
        c.exchange.retryAfter = true
        perform(c, c.exchange.machine.fail(status: 503))
        drive(c)
    }

    /// Gives up a slot held but not attached (the connect failed, or the exchange ended).
    func releaseHeld(_ c: HTTPConnection) {
        let t = c.exchange.heldTarget
        guard t >= 0 else { return }
        c.exchange.heldTarget = -1
        let p = plan(of: c)
        if c.exchange.group < p.groups.count, t < p.groups[c.exchange.group].targets.count {
            p.groups[c.exchange.group].targets[t].runtime.release()
        }
    }

    private func httpHandoff(_ h: SurgeHandoff) {
        let w = h.waiter
        guard w.slot >= 0, Int(truncatingIfNeeded: w.slot) < httpConns.count else {
            h.target.release()
            return
        }
        let c = httpConns[Int(truncatingIfNeeded: w.slot)]
        guard c.state == .open, c.generation == w.generation, c.exchange.surgeQueued,
              c.exchange.surgeQueue === h.queue, c.exchange.surgeSince == w.since else {
            h.target.release()  // the waiter left: the next one gets the slot
            return
        }
        c.exchange.surgeQueued = false
        c.exchange.surgeQueue = nil
        let statsId = plan(of: c).groups[c.exchange.group].statsId
        guard rebase(c, withGroup: true) else {
            h.target.release()
            stats.surgeWait(group: statsId, nanos: now &- w.since)
            perform(c, c.exchange.machine.fail(status: 503))
            drive(c)
            return
        }
        if let t = usableTarget(h.target, group: c.exchange.group) {
            c.exchange.heldTarget = t
        } else {
            h.target.finished()  // draining or gone: its slot is not for new traffic
        }
        c.exchange.surgeTurn = true
        connectUpstream(c)
        if !(c.generation == w.generation && c.exchange.surgeQueued) {
            stats.surgeWait(group: statsId, nanos: now &- w.since)
        }
        drive(c)
    }

    // MARK: L4

    private func waiter(_ c: TCPConnection) -> SurgeWaiter {
        SurgeWaiter(worker: Int32(truncatingIfNeeded: id), layer: .tcp, slot: c.slot, generation: c.generation,
                    since: c.surgeSince)
    }

    /// Puts the connection in `q`; a full queue closes it at once.
    func enqueue(_ c: TCPConnection, _ q: SurgeQueue, atHead: Bool) {
        guard let p = c.plan else { return }
        let g = p.groups[c.group]
        if c.surgeSince == 0 { c.surgeSince = now }
        let w = waiter(c)
        if atHead {
            q.requeue(w)
        } else if !q.enqueue(w, limit: g.surgeSize) {
            stats.surgeOverflowed(group: g.statsId)
            c.end = .surgeQueueFull
            refuse(c)
            return
        }
        c.state = .queued
        c.surgeQueue = q
        c.surgeDeadline = c.surgeSince &+ g.surgeTimeout
        armTimer(c)
        if c.group < plan.groups.count, plan.groups[c.group] === g { dispatchSurge(group: c.group) }
    }

    /// The connection leaves its queue (closed while queued, or timed out).
    func leaveQueue(_ c: TCPConnection) {
        guard c.state == .queued, let q = c.surgeQueue else { return }
        _ = q.remove(waiter(c))
        c.surgeQueue = nil
        c.state = .connecting
        if let p = c.plan { stats.surgeWait(group: p.groups[c.group].statsId, nanos: now &- c.surgeSince) }
    }

    func surgeTimedOut(_ c: TCPConnection) {
        if let p = c.plan { stats.surgeTimedOut(listener: p.listeners[c.listener].statsId) }
        leaveQueue(c)
        c.end = .surgeQueueTimeout
        refuse(c)
    }

    /// Closes a connection no target will take with a FIN, not a reset: the client's bytes
    /// still unread (it may have sent some while it waited) are discarded first, since closing
    /// a socket with unread data resets it. Bounded: at most 1 MiB, never blocking.
    func refuse(_ c: TCPConnection) {
        let fd = c.clientFd
        if fd >= 0 {
            var rounds = 0
            while rounds < 16, recv(fd, nil, 65_536, Int32(MSG_DONTWAIT | MSG_TRUNC)) > 0 { rounds += 1 }
        }
        close(c)
    }

    /// Gives up a slot held but not attached.
    func releaseHeld(_ c: TCPConnection) {
        let t = c.heldTarget
        guard t >= 0 else { return }
        c.heldTarget = -1
        if let p = c.plan, c.group < p.groups.count, t < p.groups[c.group].targets.count {
            p.groups[c.group].targets[t].runtime.release()
        }
    }

    private func tcpHandoff(_ h: SurgeHandoff) {
        let w = h.waiter
        guard w.slot >= 0, Int(truncatingIfNeeded: w.slot) < conns.count else {
            h.target.release()
            return
        }
        let c = conns[Int(truncatingIfNeeded: w.slot)]
        guard c.state == .queued, c.generation == w.generation, c.surgeQueue === h.queue, c.surgeSince == w.since else {
            h.target.release()
            return
        }
        c.surgeQueue = nil
        c.state = .connecting
        let statsId = c.plan.map { $0.groups[c.group].statsId } ?? -1
        guard rebaseTCP(c) else {
            h.target.release()
            stats.surgeWait(group: statsId, nanos: now &- w.since)
            c.end = .noTarget
            close(c)
            return
        }
        if let t = usableTarget(h.target, group: c.group) {
            c.heldTarget = t
        } else {
            h.target.finished()
        }
        c.surgeTurn = true
        if let p = c.plan { c.connectDeadline = now &+ p.listeners[c.listener].connectTimeout }
        connectNext(c)
        if !(c.generation == w.generation && c.state == .queued) {
            stats.surgeWait(group: statsId, nanos: now &- w.since)
        }
    }
}
