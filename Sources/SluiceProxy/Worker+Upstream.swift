import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// The L7 data path's target connections: picking and connecting (through the path L4
/// uses), the per-worker pools of idle keep-alive connections, rebasing an exchange onto a
/// new Plan, and events of target sockets.
extension Worker {
    /// Finds a target connection for the current exchange: a pooled one, or a new one.
    /// Answers 502/504/503 when no target can be had. Picks and connects through the path
    /// L4 uses (`pickTarget`, `startConnect`), with the pool look-up between the two.
    func connectUpstream(_ c: HTTPConnection) {
        // A new Plan arrived mid-request (health change, reload): pick from it. When the
        // listener or group is gone, nothing was sent to the client yet (a retry happens only
        // before the response began): answer 503 on the old Plan and close.
        guard rebase(c, withGroup: true) else {
            perform(c, c.exchange.machine.fail(status: 503))
            return
        }
        // After `rebase` the connection runs on the worker's `plan`, whose indices
        // `pickTarget` and the pool use.
        let group = c.exchange.group
        let turn = c.exchange.surgeTurn
        c.exchange.surgeTurn = false
        // First in, first out: while others wait, a new request queues behind them.
        if !turn, c.exchange.machine.attempts == 0, plan.groups[group].surgeHasWaiters, let q = plan.groups[group].surge {
            enqueue(c, q, atHead: false)
            return
        }
        let choice = TargetChoice(hash: c.exchange.keyHash, sticky: c.exchange.stickyTarget,
                                  roundRobin: c.exchange.keyMissing)
        let holds = plan.groups[group].maxPerTarget > 0
        attempts: while c.exchange.machine.mayAttempt {
            let t: Int
            if c.exchange.heldTarget >= 0 {
                t = c.exchange.heldTarget  // handed over from the surge queue
                c.exchange.tried.insert(t)
            } else {
                guard let p = pickTarget(group: group, tried: &c.exchange.tried, choice: choice) else { break }
                t = p
                if holds { c.exchange.heldTarget = t }
            }
            c.exchange.machine.targetPicked()
            if plan.groups[group].protocolVersion != .http1 {
                // HTTP/2 to the target: a stream on a shared connection.
                switch attachH2Stream(c, group: group, target: t) {
                case .ready:
                    c.exchange.machine.targetConnected()
                    return
                case .pending:
                    c.exchange.machine.connectPending(now: now, policy: policy(of: c))
                    armHTTPTimer(c)
                    return
                case .failed:
                    releaseHeld(c)
                    plan.groups[group].targets[t].runtime.failed()
                    let next = c.exchange.machine.connectFailed(timedOut: false)
                    if next == .connect { continue }
                    perform(c, next)
                    return
                case .noSocket:
                    releaseHeld(c)
                    break attempts
                }
            }
            if let u = takePooled(group: group, target: t) {
                attach(c, u)
                c.exchange.machine.targetConnected()
                return
            }
            let u = takeUpstream()
            switch startConnect(to: plan.groups[group].targets[t].address, owner: .upstream, index: u.slot) {
            case .connected(let socket):
                adopt(u, socket: socket, group: group, target: t, connecting: false)
                attach(c, u)
                switch startTargetTLS(u) {
                case .done:
                    c.exchange.machine.targetConnected()
                case .waiting:
                    c.exchange.machine.connectPending(now: now, policy: policy(of: c))
                    armHTTPTimer(c)
                case .failed:
                    upstreamConnectFailed(c, timedOut: false)
                }
                return
            case .inProgress(let socket):
                adopt(u, socket: socket, group: group, target: t, connecting: true)
                attach(c, u)
                c.exchange.machine.connectPending(now: now, policy: policy(of: c))
                armHTTPTimer(c)
                return
            case .failed:
                discard(u)  // only its slot: `startConnect` closed the socket
                releaseHeld(c)
                plan.groups[group].targets[t].runtime.failed()
                let next = c.exchange.machine.connectFailed(timedOut: false)
                if next == .connect { continue }
                perform(c, next)
                return
            case .noSocket:
                discard(u)
                releaseHeld(c)
                break attempts
            }
        }
        // Every eligible target full, or none to pick, before any was tried: wait in the
        // group's queue when it has one (at its head when it was this request's turn).
        if c.exchange.machine.attempts == 0, let q = plan.groups[group].surge {
            enqueue(c, q, atHead: turn)
            return
        }
        // No target could be picked before any was tried (none listed, all draining or at
        // weight 0): 503. Targets were tried and failed: 504 if one timed out, else 502.
        perform(c, c.exchange.machine.noTargetLeft())
    }

    /// Readies a slab object for a new connection to `target` of `group` (of the worker's
    /// `plan`); it takes ownership of `socket`, which `startConnect` registered for it.
    private func adopt(_ u: UpstreamConnection, socket: consuming Descriptor, group: Int, target: Int,
                       connecting: Bool) {
        u.socket = consume socket
        u.group = group
        u.target = target
        u.planGeneration = plan.generation
        u.transport = .plain
        u.tlsPending = false
        u.io = Readiness()
        u.io.writable = !connecting
        u.connecting = connecting
    }

    /// Starts TLS on a target socket whose TCP connect completed, for `https` groups; the
    /// handshake is part of connecting (bounded by the connect timeout). `.done` at once for
    /// a plain group.
    private func startTargetTLS(_ u: UpstreamConnection) -> HandshakeProgress {
        guard let context = plan.groups[u.group].tls else { return .done }
        guard let s = context.makeStream(fd: u.fd, serverName: plan.groups[u.group].serverName) else { return .failed }
        u.transport = .tls(s)
        u.tlsPending = true
        u.connecting = true
        u.io.readable = true
        u.io.writable = true
        return continueTargetTLS(u)
    }

    private func continueTargetTLS(_ u: UpstreamConnection) -> HandshakeProgress {
        guard case .tls(let s) = u.transport else { return .done }
        let r = stepTargetHandshake(s, io: &u.io)
        if r == .done {
            u.tlsPending = false
            u.connecting = false
            u.io.readable = true
            u.io.writable = true
        }
        return r
    }

    /// Moves the connection to the worker's current Plan, if it runs on an older one: the
    /// listener by name (still http), and with `withGroup` the exchange's group by name, its
    /// tried targets and sticky target by address. Returns false and changes nothing when the
    /// listener or group is gone; then `c.plan` and every index in `c` still belong together.
    ///
    /// Indices kept in a connection (`listener`, `group`, `tried`, `stickyTarget`,
    /// `logTarget`) are only valid with `c.plan`; the per-worker arrays (`pickers`,
    /// `actionChoosers`, `idlePool`) only with the worker's `plan`. Cold path (after a Plan
    /// change).
    func rebase(_ c: HTTPConnection, withGroup: Bool) -> Bool {
        guard let old = c.plan, old !== plan else { return true }
        let name = old.listeners[c.listener].name
        guard let listener = plan.listeners.firstIndex(where: { $0.isHTTP && $0.name == name }) else { return false }
        if withGroup {
            guard let (group, tried) = plan.rebase(group: c.exchange.group, tried: c.exchange.tried, from: old) else { return false }
            let targets = plan.groups[group].targets
            func map(_ t: Int) -> Int {
                guard t >= 0, t < old.groups[c.exchange.group].targets.count else { return -1 }
                let key = old.groups[c.exchange.group].targets[t].key
                return targets.firstIndex { $0.key == key } ?? -1
            }
            let sticky = map(c.exchange.stickyTarget)
            // The worker's weights are for `plan`, the Plan the connection moves to.
            let weights = group < groupWeights.count ? groupWeights[group].weights : []
            c.exchange.stickyTarget = sticky >= 0 && sticky < weights.count && weights[sticky] > 0 ? sticky : -1
            c.exchange.logTarget = map(c.exchange.logTarget)
            c.exchange.group = group
            c.exchange.tried = tried
        } else {
            c.exchange.logTarget = -1
        }
        c.plan = plan
        c.listener = listener
        return true
    }

    func attach(_ c: HTTPConnection, _ u: UpstreamConnection) {
        u.owner = c.slot
        u.runtime = plan(of: c).groups[c.exchange.group].targets[u.target].runtime
        if c.exchange.heldTarget == u.target {
            c.exchange.heldTarget = -1
            u.runtime?.startedHeld()  // its slot was counted when reserved or handed over
        } else {
            u.runtime?.started()
        }
        c.exchange.logTarget = u.target
        if c.exchange.targetStarted == 0 { c.exchange.targetStarted = now }
        c.exchange.upstream = u
        pickers[c.exchange.group].opened(u.target)
    }

    func takeUpstream() -> UpstreamConnection {
        let u: UpstreamConnection
        if let slot = freeUpstreamSlots.popLast() {
            u = upstreams[Int(slot)]
        } else {
            u = UpstreamConnection(slot: Int32(upstreams.count))
            upstreams.append(u)
        }
        assert(u.socket == nil && u.owner == -1)
        return u
    }

    private func takePooled(group: Int, target: Int) -> UpstreamConnection? {
        guard group < idlePool.count, target < idlePool[group].count else { return nil }
        while let slot = idlePool[group][target].popLast() {
            let u = upstreams[Int(slot)]
            if now &- u.idleSince > Worker.poolIdleLimit {
                discard(u)
                continue
            }
            return u
        }
        return nil
    }

    /// Closes a target connection and frees its slot.
    func discard(_ u: UpstreamConnection) {
        if case .stream = u.transport { releaseH2Stream(u) }
        if case .tls(let s) = u.transport { s.shutdown() }  // close_notify, best effort
        u.transport = .plain
        if let fd = u.socket?.raw {
            fds.unregister(fd)
            u.socket = nil  // closes
        }
        u.owner = -1
        freeUpstreamSlots.append(u.slot)
    }

    /// Ends the exchange's use of its target connection: back to the pool when it can carry
    /// another request, closed otherwise.
    func releaseUpstream(_ c: HTTPConnection, reusable: Bool) {
        guard let u = c.exchange.upstream else { return }
        c.exchange.upstream = nil
        u.runtime?.release()
        if u.planGeneration == plan.generation { pickers[u.group].closed(u.target) }
        if reusable && !u.connecting && u.socket != nil && u.planGeneration == plan.generation
            && idlePool[u.group][u.target].count < Worker.poolLimitPerTarget {
            u.owner = -1
            u.idleSince = now
            idlePool[u.group][u.target].append(u.slot)
        } else {
            discard(u)
        }
    }

    func upstreamEvent(_ u: UpstreamConnection, _ events: EpollEvents) {
        guard u.owner >= 0 else {
            // A pooled connection spoke or closed: the target ended it. Drop it. Writability
            // alone is no news: an ACK arriving after the exchange raises an EPOLLOUT edge.
            guard !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) else { return }
            if u.group < idlePool.count, u.target < idlePool[u.group].count,
               let i = idlePool[u.group][u.target].firstIndex(of: u.slot) {
                idlePool[u.group][u.target].remove(at: i)
            }
            discard(u)
            return
        }
        let c = httpConns[Int(u.owner)]
        if u.connecting {
            if !events.isDisjoint(with: [.error, .hangup]) {
                upstreamConnectFailed(c, timedOut: false)
                return
            }
            let step: HandshakeProgress
            if u.tlsPending {
                u.io.note(events)
                step = continueTargetTLS(u)
            } else {
                guard events.contains(.writable) else { return }
                step = startTargetTLS(u)
            }
            switch step {
            case .waiting: return
            case .failed:
                upstreamConnectFailed(c, timedOut: false)
                return
            case .done: break
            }
            u.connecting = false
            c.exchange.machine.targetConnected()
            armHTTPTimer(c)  // from the connect deadline to the response timeout
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { u.io.noteReadable() }
        if !events.isDisjoint(with: [.readHangup, .hangup, .error]) { u.io.hangup = true }
        if !events.isDisjoint(with: [.writable, .hangup, .error]) { u.io.noteWritable() }
        drive(c)
    }

    func upstreamConnectFailed(_ c: HTTPConnection, timedOut: Bool) {
        guard let u = c.exchange.upstream else { return }
        c.exchange.upstream = nil
        u.runtime?.release()
        u.runtime?.failed()
        if u.planGeneration == plan.generation { pickers[u.group].closed(u.target) }
        discard(u)
        perform(c, c.exchange.machine.connectFailed(timedOut: timedOut))
        drive(c)
    }
}
