import SluiceBalancer
import SluiceCore

/// Routing state: adopting a published Plan or in-place weights, the per-worker balancer
/// state built from them, and evictions.
extension Worker {
    /// Applies what the control plane published since the last turn: a new Plan, or new
    /// weights for the current one; then acknowledges the routing version.
    func adoptRouting() {
        let version = store.routingVersion  // read first: everything published before it is visible
        if store.generation != plan.generation {
            adoptPlan()
        } else {
            refreshWeights()
        }
        routingVersion = version
        store.acknowledge(worker: id, routingVersion: version)
        // Targets may have appeared (registered, healthy, weight) or capacity grown.
        for g in surgeGroups { dispatchSurge(group: g) }
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
    /// are registered (this worker owns them from now on), removed ones closed (their
    /// connections finish on the old Plan).
    private func adoptPlan() {
        let bundle = store.bundle
        let newFds = stopDeadline == nil ? bundle.listenerFds[id] : Array(repeating: Int32(-1), count: bundle.plan.listeners.count)
        let kept = Set(newFds)
        var stayed: [Int32: ListenerSocket] = [:]
        for case let l? in listeners {
            if kept.contains(l.fd) {
                stayed[l.fd] = l
            } else {
                unregisterListener(l)  // and closed when `listeners` is replaced below
            }
        }
        // UDP sockets likewise; the flows of a socket that goes close with it (on the old Plan).
        let newUDPFds = stopDeadline == nil ? bundle.udpFds[id] : Array(repeating: Int32(-1), count: bundle.plan.listeners.count)
        let keptUDP = Set(newUDPFds)
        var stayedUDP: [Int32: UDPListenerSocket] = [:]
        for case let l? in udpListeners {
            if keptUDP.contains(l.fd) {
                stayedUDP[l.fd] = l
            } else {
                unregisterUDPListener(l)
            }
        }
        let oldPlan = plan
        plan = bundle.plan
        accessLogFds = bundle.accessLogFds
        listeners = newFds.map { fd in fd < 0 ? nil : stayed[fd] ?? ListenerSocket(taking: fd) }
        listenerPending = Array(repeating: false, count: newFds.count)
        for case let (i, l?) in listeners.enumerated() {
            if stayed[l.fd] != nil {
                _ = fds.register(l.fd, owner: .listener, index: Int32(i))  // same socket, new index
                let token = FdTable.token(fd: l.fd, generation: fds.generation(of: l.fd))
                try? epoll.modify(l.fd, events: [.readable, .edgeTriggered], data: token)
                listenerPending[i] = true
            } else {
                try? registerListener(l, index: i)
            }
        }
        rebuildBalancers(from: oldPlan)
        udpListeners = adoptUDPSockets(newUDPFds, kept: stayedUDP)
        rebaseFlows(from: oldPlan)
        // A reload (the configuration changed, not only registrations): HTTP/2 clients get
        // GOAWAY and reconnect, so they meet new certificates and listener settings; their
        // streams in flight finish.
        if oldPlan.config != plan.config { goawayAll() }
    }

    /// The worker's UDP listener sockets for the current Plan from `fds` (by listener; -1:
    /// none): sockets in `kept` stay (registered again under their new index), others are
    /// taken over and registered. Each gets this worker's share of the listener's `max_flows`.
    func adoptUDPSockets(_ fds: [Int32], kept: [Int32: UDPListenerSocket]) -> [UDPListenerSocket?] {
        var out: [UDPListenerSocket?] = []
        for (i, fd) in fds.enumerated() {
            guard fd >= 0, i < plan.listeners.count else {
                out.append(nil)
                continue
            }
            let lp = plan.listeners[i]
            let l = kept[fd] ?? UDPListenerSocket(taking: fd, address: lp.address)
            l.maxFlows = UDPFlowTable.perWorkerLimit(maxFlows: lp.maxFlows, workers: workerCount)
            if kept[fd] != nil {
                let token = self.fds.register(fd, owner: .udpListener, index: Int32(i))  // same socket, new index
                try? epoll.modify(fd, events: [.readable, .edgeTriggered], data: token)
                l.pending = true
                udpReadPending = true
            } else {
                try? registerUDPListener(l, index: i)
            }
            out.append(l)
        }
        return out
    }

    /// Closes connections to targets whose deregistration delay ran out.
    func closeEvicted() {
        closeEvictedFlows()
        seenEvictions = process.evictions.load(ordering: .relaxed)
        for c in conns where c.state != .free && c.target >= 0 {
            if let p = c.plan, p.groups[c.group].targets[c.target].runtime.evicted.load(ordering: .relaxed) { close(c) }
        }
        for c in httpConns where c.state != .free {
            if let u = c.exchange.upstream, u.runtime?.evicted.load(ordering: .relaxed) == true {
                releaseUpstream(c, reusable: false)
                closeHTTP(c)
            }
        }
    }

    /// Fresh per-worker balancer state for the current plan. Pooled target connections move
    /// to the new Plan's indices (same group name and target address); only those to targets
    /// the new Plan no longer has are closed.
    func rebuildBalancers(from old: Plan?) {
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
        if let old { rebaseH2Upstreams(from: old) }
        surgeGroups = plan.groups.indices.filter { plan.groups[$0].surge != nil }
    }

    /// HTTP/2 target connections move to the new Plan's indices like pooled ones; those to
    /// targets the new Plan no longer has (or a group that stopped speaking HTTP/2) drain.
    private func rebaseH2Upstreams(from old: Plan) {
        for h in h2Upstreams where h.state != .free && h.planGeneration == old.generation {
            guard h.group < old.groups.count, h.target < old.groups[h.group].targets.count,
                  let g = plan.groups.firstIndex(where: { $0.name == old.groups[h.group].name }),
                  plan.groups[g].protocolVersion == old.groups[h.group].protocolVersion,
                  let t = plan.groups[g].targets.firstIndex(where: { $0.key == old.groups[h.group].targets[h.target].key })
            else {
                if h.state == .open { h.state = .draining }
                if h.streams.isEmpty { closeH2Upstream(h) }
                continue
            }
            h.group = g
            h.target = t
            h.planGeneration = plan.generation
        }
    }
}
