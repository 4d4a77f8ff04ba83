import SluiceBalancer
import SluiceCore

/// UDP flows: opening one for a new client, pinning it to a target (and re-pinning it when
/// its target leaves or loses its weight), expiry on the timer wheel, moving flows to a new
/// Plan, closing them.
extension Worker {
    /// Opens a flow for `client` on listener socket `l`: a group (split forwards take turns),
    /// a target by the group's picker on the client-address hash, a socket connected to it.
    /// Nil when no target can be used (the datagram is dropped).
    func openFlow(key: UDPFlowKey, client: SocketAddress, local: SocketAddress, on l: UDPListenerSocket,
                  listener index: Int) -> UDPFlow? {
        let lp = plan.listeners[index]
        guard !lp.forward.isEmpty else { return nil }
        let f = takeFlow()
        f.generation &+= 1
        f.key = key
        f.listener = index
        f.listenerFd = l.fd
        f.client = client
        f.local = local
        f.target = -1
        f.timerAt = 0
        f.idleTimeout = lp.flowIdleTimeout
        f.lastActivity = now
        f.openedAt = now
        f.bytesIn = 0
        f.bytesOut = 0
        f.logFd = index < accessLogFds.count ? accessLogFds[index] : -1
        f.statsId = lp.statsId
        f.flowHash = client.withAddressBytes { StableHash.hash($0, seed: lp.hashSeed) }
        f.group = lp.forward.count == 1 ? lp.forward[0].group : lp.forward[groupChoosers[index].next() ?? 0].group
        guard pin(f) else {
            freeUDPSlots.append(f.slot)
            return nil
        }
        f.state = .open
        flowTable.insert(key, slot: f.slot)
        l.flows += 1
        if f.statsId >= 0 && f.statsId < StatsBlock.maxListeners {
            stats.add(StatsBlock.listenerSlot(f.statsId, StatsBlock.connTotal))
        }
        return f
    }

    private func takeFlow() -> UDPFlow {
        if let slot = freeUDPSlots.popLast() { return udpFlows[Int(slot)] }
        let f = UDPFlow(slot: Int32(udpFlows.count))
        udpFlows.append(f)
        return f
    }

    /// Whether flow `f` can send to its target: it has one, and the target still has weight
    /// (not unhealthy, draining or zeroed).
    @inline(__always)
    func targetUsable(_ f: UDPFlow) -> Bool {
        f.target >= 0 && f.socketFd >= 0 && f.target < groupWeights[f.group].weights.count
            && groupWeights[f.group].weights[f.target] > 0
    }

    /// Pins `f` to a target of its group (dropping the target it had): the picker's choice
    /// for the flow's hash, so `flow_hash` moves only the flows of a target that changed.
    /// A target whose socket cannot be connected (no route) is skipped, up to the connect
    /// attempts. False when no target is left.
    func pin(_ f: UDPFlow) -> Bool {
        unpin(f)
        var tried = TriedTargets()
        while let t = pickTarget(group: f.group, tried: &tried, choice: TargetChoice(hash: f.flowHash)) {
            let target = plan.groups[f.group].targets[t]
            guard let raw = try? Socket.connectedDatagram(to: target.address) else {
                target.runtime.failed()
                continue
            }
            let socket = Descriptor(taking: raw)
            let token = fds.register(raw, owner: .udpFlow, index: f.slot)
            do {
                try epoll.add(raw, events: [.readable, .edgeTriggered], data: token)
            } catch {
                fds.unregister(raw)
                socket.close()
                return false
            }
            f.socket = consume socket
            f.target = t
            pickers[f.group].opened(t)
            target.runtime.started()
            f.headerPending = proxyVersion(of: f) == .v2
            return true
        }
        return false
    }

    /// The PROXY protocol version flow `f` sends to its target: the group's setting, else the
    /// listener's.
    func proxyVersion(of f: UDPFlow) -> ProxyProtocolVersion? {
        plan.groups[f.group].proxySend ?? plan.listeners[f.listener].proxySend
    }

    /// Closes the flow's target socket and gives its target back to the balancer.
    func unpin(_ f: UDPFlow) {
        if let fd = f.socket?.raw {
            fds.unregister(fd)
            f.socket = nil  // closes
        }
        if f.target >= 0 {
            plan.groups[f.group].targets[f.target].runtime.finished()
            pickers[f.group].closed(f.target)
            f.target = -1
        }
    }

    /// A flow found no target while datagram `index` of the batch was being resolved: it
    /// closes, and datagrams before `index` that were meant for it are dropped too (its slot
    /// may serve another client before the batch is sent).
    func dropFlow(_ f: UDPFlow, before index: Int, dropped: inout UInt64) {
        for j in 0..<index where udpSlots[j] == f.slot {
            udpSlots[j] = -1
            dropped &+= 1
        }
        closeFlow(f, end: .noTarget)
    }

    /// Ends flow `f`: its socket closes, its table entry goes, it counts as a closed connection.
    func closeFlow(_ f: UDPFlow, end: L4End = .closed) {
        guard f.state == .open else { return }
        if f.logFd >= 0 { logFlow(f, plan: plan, end: end) }
        unpin(f)
        flowTable.remove(f.key)
        if f.listener < udpListeners.count, let l = udpListeners[f.listener], l.fd == f.listenerFd, l.flows > 0 {
            l.flows -= 1
        }
        countFlowClosed(f)
        f.state = .free
        f.generation &+= 1
        f.listenerFd = -1
        freeUDPSlots.append(f.slot)
    }

    // MARK: Expiry

    /// Makes sure a wheel entry will fire by the flow's deadline. The deadline only moves
    /// later as datagrams pass, so an entry already pending is left alone and re-armed when it
    /// fires early (no wheel work per datagram).
    @inline(__always)
    func armUDPTimer(_ f: UDPFlow) {
        let deadline = f.deadline
        guard f.timerAt == 0 || deadline < f.timerAt else { return }
        f.timerAt = deadline
        wheel.schedule(f.timerToken.raw, at: deadline)
    }

    func udpTimerFired(slot: Int32, generation: UInt32) {
        guard Int(slot) < udpFlows.count else { return }
        let f = udpFlows[Int(slot)]
        guard f.generation == generation, f.state == .open else { return }
        if f.timerAt <= now { f.timerAt = 0 }
        if now < f.deadline {
            armUDPTimer(f)
        } else {
            closeFlow(f, end: .idleTimeout)
        }
    }

    // MARK: Plan changes and stop

    /// Moves every open flow to the current Plan (after `adoptPlan` replaced it and rebuilt the
    /// pickers): listener by its socket, group by name (if the listener still forwards to it),
    /// target by address. A flow whose listener socket or group is gone closes; one whose
    /// target is gone keeps its slot and is re-pinned on its next datagram.
    func rebaseFlows(from old: Plan) {
        guard flowTable.count > 0 else { return }
        var listenerBySocket: [Int32: Int] = [:]
        for case let (i, l?) in udpListeners.enumerated() { listenerBySocket[l.fd] = i }
        for f in udpFlows where f.state == .open {
            let oldGroup = old.groups[f.group]
            let oldTarget = f.target >= 0 ? oldGroup.targets[f.target] : nil
            guard let li = listenerBySocket[f.listenerFd],
                  let g = plan.listeners[li].forward.lazy.map(\.group).first(where: { plan.groups[$0].name == oldGroup.name })
            else {
                if f.logFd >= 0 { logFlow(f, plan: old, end: .closed) }
                forceClose(f, oldTarget: oldTarget?.runtime)
                continue
            }
            f.listener = li
            f.logFd = li < accessLogFds.count ? accessLogFds[li] : -1
            f.group = g
            f.statsId = plan.listeners[li].statsId
            if let oldTarget {
                if let t = plan.groups[g].targets.firstIndex(where: { $0.key == oldTarget.key }) {
                    f.target = t
                    pickers[g].opened(t)  // the new Plan's pickers start from zero
                } else {
                    oldTarget.runtime.finished()
                    f.target = -1
                    if let fd = f.socket?.raw {
                        fds.unregister(fd)
                        f.socket = nil  // closes; the flow is re-pinned on its next datagram
                    }
                }
            }
            f.idleTimeout = plan.listeners[li].flowIdleTimeout
            armUDPTimer(f)
        }
    }

    /// Closes a flow whose indices belong to the old Plan (its listener socket or its group
    /// left): the balancer state it would give back is gone with that Plan.
    private func forceClose(_ f: UDPFlow, oldTarget: TargetRuntime?) {
        oldTarget?.finished()
        f.target = -1
        if let fd = f.socket?.raw {
            fds.unregister(fd)
            f.socket = nil  // closes
        }
        flowTable.remove(f.key)
        if let l = udpListeners.first(where: { $0?.fd == f.listenerFd }) ?? nil, l.flows > 0 { l.flows -= 1 }
        countFlowClosed(f)
        f.state = .free
        f.generation &+= 1
        f.listenerFd = -1
        freeUDPSlots.append(f.slot)
    }

    private func countFlowClosed(_ f: UDPFlow) {
        if f.statsId >= 0 && f.statsId < StatsBlock.maxListeners {
            stats.add(StatsBlock.listenerSlot(f.statsId, StatsBlock.connClosed))
        }
    }

    /// Closes flows whose target's deregistration delay ran out.
    func closeEvictedFlows() {
        for f in udpFlows where f.state == .open && f.target >= 0 {
            if plan.groups[f.group].targets[f.target].runtime.evicted.load(ordering: .relaxed) { closeFlow(f) }
        }
    }

    /// A stop: replies gathered so far leave, then every flow and UDP listener socket closes
    /// (a flow cannot answer without its listener socket; UDP has nothing to finish).
    func stopUDP() {
        flushReplies()
        for f in udpFlows where f.state == .open { closeFlow(f) }
        for i in udpListeners.indices {
            if let l = udpListeners[i] { unregisterUDPListener(l) }
            udpListeners[i] = nil  // closes
        }
        udpReadPending = false
    }
}
