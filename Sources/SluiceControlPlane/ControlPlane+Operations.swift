import SluiceBalancer
import SluiceConfig
import SluiceProxy
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Registration, deregistration (draining), changes, health results, the periodic tick and
/// reload.
extension ControlPlane {
    /// The checks of a registration's input, the API's and the fleet's alike: the parsed
    /// address, or the refusal naming what is wrong.
    static func checkedInput(address: String, zone: String?, weight: Int?) throws(Refusal) -> SocketAddressSpec {
        if let problem = RegistrationInput.addressProblem(address) {
            throw Refusal(status: 400, code: "InvalidAddress", message: problem)
        }
        guard let spec = AddressParser.parse(address) else {
            throw Refusal(status: 400, code: "InvalidAddress", message: "expected HOST:PORT or [IPv6]:PORT")
        }
        if let w = weight, let problem = ControlPlane.weightProblem(w) {
            throw Refusal(status: 400, code: "InvalidWeight", message: problem)
        }
        if let z = zone, let problem = RegistrationInput.zoneProblem(z) {
            throw Refusal(status: 400, code: "InvalidZone", message: problem)
        }
        return spec
    }

    /// Registers (or re-registers) a target; persisted before it returns. Returns whether it
    /// was new.
    public func register(group: String, address: String, zone: String?, weight: Int?,
                         now wall: String) throws(Refusal) -> (created: Bool, target: TargetView) {
        let spec = try ControlPlane.checkedInput(address: address, zone: zone, weight: weight)
        var outcome: Result<(Bool, TargetView), Refusal> = .failure(Refusal(status: 500, code: "Internal", message: "no outcome"))
        let stored = mutate(persisting: true) { s in
            guard let gi = s.groups.firstIndex(where: { $0.config.name == group }) else {
                outcome = .failure(Refusal(status: 404, code: "GroupNotFound", message: "no target group named \(group)"))
                return false
            }
            let key = spec.description
            let z = zone ?? s.config.node.zone
            let w = weight ?? 1
            if let ti = s.groups[gi].targets.firstIndex(where: { $0.address == key && $0.drainDeadline == nil }) {
                var t = s.groups[gi].targets[ti]
                if t.isStatic {
                    outcome = .success((false, ControlPlane.view(t)))
                    return false  // the file owns it; registering it again changes nothing
                }
                t.zone = z
                t.weight = w
                s.groups[gi].targets[ti] = t
                outcome = .success((false, ControlPlane.view(t)))
            } else {
                let g = s.groups[gi].config
                let checks = g.healthCheck.map {
                    HealthStateMachine(healthyThreshold: $0.healthyThreshold, unhealthyThreshold: $0.unhealthyThreshold)
                }
                let t = Target(address: key, host: spec.host, port: spec.port, zone: z, weight: w, isStatic: false,
                               registeredAt: wall, runtime: TargetRuntime(group: group, key: key, host: spec.host, port: spec.port), health: checks,
                               state: checks == nil ? .unavailable : .initial,
                               reason: checks == nil ? .healthCheckDisabled : .initialHealthChecking,
                               healthySince: clockNow())
                s.groups[gi].targets.append(t)
                outcome = .success((true, ControlPlane.view(t)))
                s.pending.append(Event(type: "registration", group: group, target: key, state: t.state.rawValue, reason: t.reason?.rawValue))
            }
            return true
        }
        if let refusal = stored { throw refusal }
        switch outcome {
        case .success(let r): return r
        case .failure(let e): throw e
        }
    }

    /// Starts draining a target: no new traffic from the next Plan on; gone once nothing is in
    /// flight or the group's deregistration delay ends. With `wait`, returns only then.
    public func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(Refusal) -> TargetView {
        let key = AddressParser.parse(address)?.description ?? address
        var outcome: Result<TargetView, Refusal> = .failure(Refusal(status: 500, code: "Internal", message: "no outcome"))
        var runtime: TargetRuntime?
        // Registered before the change, so the removal cannot be missed.
        let waiter = wait ? (try? Posix.eventfd()) : nil
        defer { if let waiter { forgetWaiter(waiter) } }
        let stored = mutate(persisting: true) { s in
            guard let gi = s.groups.firstIndex(where: { $0.config.name == group }) else {
                outcome = .failure(Refusal(status: 404, code: "GroupNotFound", message: "no target group named \(group)"))
                return false
            }
            guard let ti = s.groups[gi].targets.firstIndex(where: { $0.address == key }) else {
                outcome = .failure(Refusal(status: 404, code: "TargetNotFound", message: "\(key) is not registered in \(group)"))
                return false
            }
            if s.groups[gi].targets[ti].drainDeadline == nil {
                s.groups[gi].targets[ti].drainDeadline = clockNow() &+ s.groups[gi].config.deregistrationDelay
                s.groups[gi].targets[ti].state = .draining
                s.groups[gi].targets[ti].reason = .deregistrationInProgress
                s.pending.append(Event(type: "deregistration", group: group, target: key, state: "draining",
                           reason: TargetReason.deregistrationInProgress.rawValue))
            }
            runtime = s.groups[gi].targets[ti].runtime
            if let waiter, let r = runtime { s.drainWaiters.append((r, waiter)) }
            outcome = .success(ControlPlane.view(s.groups[gi].targets[ti]))
            return true
        }
        if let refusal = stored { throw refusal }
        let view: TargetView
        switch outcome {
        case .success(let v): view = v
        case .failure(let e): throw e
        }
        guard wait, let runtime else { return view }
        let limit = timeout.map { clockNow() &+ $0 }
        // Done when no worker can pick the target and nothing is in flight, i.e. when the tick
        // removed it and signalled `waiter` (an API thread blocks here, never a worker).
        while isPresent(group: group, runtime: runtime) {
            var remaining: UInt64 = 1_000_000_000
            if let l = limit {
                let now = clockNow()
                if now >= l {
                    throw Refusal(status: 504, code: "DrainTimeout",
                                  message: "\(key) still has \(runtime.inFlight.load(ordering: .relaxed)) in flight")
                }
                remaining = min(remaining, l - now)
            }
            if let waiter {
                Posix.waitReadable(waiter, timeoutNanos: remaining)
                Posix.drainEventfd(waiter)
            } else {
                usleep(20_000)  // no eventfd could be had (descriptor shortage): poll instead
            }
        }
        var done = view
        done.state = "drained"
        done.inFlight = 0
        return done
    }

    /// Changes a target's weight or zone.
    public func update(group: String, address: String, weight: Int?, zone: String?) throws(Refusal) -> TargetView {
        if let w = weight, let problem = ControlPlane.weightProblem(w) {
            throw Refusal(status: 400, code: "InvalidWeight", message: problem)
        }
        if let z = zone, let problem = RegistrationInput.zoneProblem(z) {
            throw Refusal(status: 400, code: "InvalidZone", message: problem)
        }
        let key = AddressParser.parse(address)?.description ?? address
        var outcome: Result<TargetView, Refusal> = .failure(Refusal(status: 500, code: "Internal", message: "no outcome"))
        let stored = mutate(persisting: true) { s in
            guard let gi = s.groups.firstIndex(where: { $0.config.name == group }) else {
                outcome = .failure(Refusal(status: 404, code: "GroupNotFound", message: "no target group named \(group)"))
                return false
            }
            guard let ti = s.groups[gi].targets.firstIndex(where: { $0.address == key && $0.drainDeadline == nil }) else {
                outcome = .failure(Refusal(status: 404, code: "TargetNotFound", message: "\(key) is not registered in \(group)"))
                return false
            }
            if let w = weight { s.groups[gi].targets[ti].weight = w }
            if let z = zone { s.groups[gi].targets[ti].zone = z }
            outcome = .success(ControlPlane.view(s.groups[gi].targets[ti]))
            return true
        }
        if let refusal = stored { throw refusal }
        switch outcome {
        case .success(let v): return v
        case .failure(let e): throw e
        }
    }

    /// A health check's result for one target.
    public func recordHealth(group: String, address: String, success: Bool, reason: TargetReason?) {
        let now = clockNow()
        mutate { s in
            guard let gi = s.groups.firstIndex(where: { $0.config.name == group }),
                  let ti = s.groups[gi].targets.firstIndex(where: { $0.address == address && $0.drainDeadline == nil }),
                  var machine = s.groups[gi].targets[ti].health else { return false }
            let r = machine.record(success: success, reason: reason)
            s.groups[gi].targets[ti].health = machine
            guard r.changed else { return false }
            let before = s.groups[gi].targets[ti].state
            s.groups[gi].targets[ti].state = r.state
            s.groups[gi].targets[ti].reason = r.reason
            if r.state == .healthy && before != .healthy {
                // Slow start only when others already carry traffic.
                let others = s.groups[gi].targets.contains { $0.address != address && $0.state == .healthy }
                s.groups[gi].targets[ti].healthySince = others ? now : 0
            }
            s.pending.append(Event(type: "target_state", group: group, target: address, state: r.state.rawValue, reason: r.reason?.rawValue))
            return true
        }
    }

    /// Periodic work (every ~100 ms): passive ejections, draining ends, slow-start steps,
    /// fail-open changes.
    public func tick() {
        let now = clockNow()
        var evict = false
        mutate { s in
            var changed = false
            for gi in s.groups.indices {
                let total = s.groups[gi].targets.count
                var ejected = s.groups[gi].targets.filter { $0.outlier.isEjected(now: now) }.count
                var remove: [Int] = []
                for ti in s.groups[gi].targets.indices {
                    let t = s.groups[gi].targets[ti]
                    // Passive checks: failures the workers saw in a row.
                    let failures = t.runtime.consecutiveFailures.load(ordering: .relaxed)
                    if failures >= OutlierDetector.defaultThreshold && t.drainDeadline == nil
                        && !t.outlier.isEjected(now: now)
                        && OutlierDetector.mayEject(ejectedCount: ejected, total: total) {
                        s.groups[gi].targets[ti].outlier.eject(now: now)
                        t.runtime.consecutiveFailures.store(0, ordering: .relaxed)
                        ejected += 1
                        changed = true
                        s.pending.append(Event(type: "target_state", group: s.groups[gi].config.name, target: t.address,
                                   state: "unhealthy", reason: TargetReason.outlierEjected.rawValue))
                    } else if failures == 0 && !t.outlier.isEjected(now: now) && t.outlier.wasEjected {
                        s.groups[gi].targets[ti].outlier.recordSuccess()
                        changed = true
                    }
                    if let deadline = t.drainDeadline {
                        let adopted = s.dataPlane?.allWorkersAdopted(t.drainGeneration) ?? true
                        if adopted && t.drainGeneration != 0 && t.runtime.inFlight.load(ordering: .acquiring) == 0 {
                            remove.append(ti)
                        } else if now >= deadline && !t.runtime.evicted.load(ordering: .relaxed) {
                            t.runtime.evicted.store(true, ordering: .releasing)
                            evict = true
                        }
                    }
                    if s.groups[gi].config.slowStart > 0 && t.state == .healthy && t.healthySince != 0
                        && now &- t.healthySince < s.groups[gi].config.slowStart &+ 1_000_000_000 {
                        changed = true
                    }
                }
                for ti in remove.reversed() {
                    let t = s.groups[gi].targets.remove(at: ti)
                    for w in s.drainWaiters where w.runtime === t.runtime { Posix.signalEventfd(w.fd) }
                    s.pending.append(Event(type: "drained", group: s.groups[gi].config.name, target: t.address, state: "drained",
                               reason: nil))
                    changed = true
                }
            }
            return changed
        }
        if evict { state.withLock { $0.dataPlane }?.evict() }
    }

    /// Run-time registrations, for the state file.
    public func registrations() -> [Registration] {
        state.withLock { s in ControlPlane.registrations(s) }
    }

    static func registrations(_ s: State) -> [Registration] {
        // By index, never copying a Target (this runs on every registration).
        var out: [Registration] = []
        for g in s.groups {
            for i in g.targets.indices where !g.targets[i].isStatic && g.targets[i].drainDeadline == nil {
                out.append(Registration(group: g.config.name, address: g.targets[i].address, zone: g.targets[i].zone,
                                        weight: g.targets[i].weight, registeredAt: g.targets[i].registeredAt ?? ""))
            }
        }
        return out
    }

    /// Applies a new config: listeners and groups as the file says, health state and run-time
    /// registrations carried over. Throws (and changes nothing) if the Plan cannot be
    /// published, e.g. a new listener cannot bind.
    public func reload(_ config: Config) throws(Refusal) {
        var failure: Refusal?
        var events: [Event] = []
        commit.withLock { _ in
            var saved: State?
            var built: Result<Plan, Plan.CompileError>?
            var dataPlane: (any DataPlane)?
            state.withLock { s in
                saved = s
                s.config = config
                s.groups = ControlPlane.groups(for: config, keeping: s.groups, registrations: ControlPlane.registrations(s),
                                               now: clockNow())
                dataPlane = s.dataPlane
                guard s.dataPlane != nil else { return }
                s.generation += 1
                let inputs = ControlPlane.inputs(&s, now: clockNow())
                built = Result { () throws(Plan.CompileError) -> Plan in
                    try Plan(config: s.config, targets: inputs, generation: s.generation, ids: s.ids)
                }
            }
            guard let dataPlane, let built else { return }
            do {
                // Binds new listeners: outside the state lock.
                let plan = try built.get()
                let version = try dataPlane.publish(plan)
                state.withLock { $0.published = plan }
                markDrainVersion(version)
                events = state.withLock { s in
                    defer { s.pending.removeAll() }
                    return s.pending
                }
                // Told with `commit` held, like `mutate`'s: ids follow the order of the changes.
                for e in events { emit(e) }
                emit(Event(type: "reload", message: "configuration applied"))
            } catch {
                state.withLock { s in
                    let generation = s.generation
                    if let saved { s = saved }
                    s.generation = generation
                }
                failure = Refusal(status: 409, code: "ReloadFailed", message: "\(error)")
            }
        }
        if let f = failure { throw f }
    }

    // MARK: views

    public func groupViews() -> [GroupView] {
        state.withLock { s in
            s.groups.map { g in
                GroupView(name: g.config.name, protocolName: g.config.protocolKind.rawValue,
                          algorithm: g.config.algorithm.rawValue, crossZone: g.config.crossZone == .enabled ? "true" : g.config.crossZone == .disabled ? "false" : "prefer_local",
                          failOpen: g.failOpen,
                          targets: g.targets.map { t in
                              var v = ControlPlane.view(t)
                              if !g.inUse && t.drainDeadline == nil { v.state = "unused"; v.reason = "Target.NotInUse" }
                              return v
                          })
            }
        }
    }

    /// Check targets for the health checker: (group, address, host, port, check) of every
    /// live target in a group that is checked.
    /// What the health checker checks: every listed, non-draining target with its group's
    /// check and TLS settings (used by `https` checks).
    public func checkTargets() -> [CheckTarget] {
        state.withLock { s in
            let proxy = Self.checkProxyVersions(s.config)
            return s.groups.flatMap { g -> [CheckTarget] in
                guard let hc = g.config.healthCheck else { return [] }
                let version = proxy[g.config.name]
                return g.targets.filter { $0.drainDeadline == nil }.map {
                    CheckTarget(group: g.config.name, address: $0.address, host: $0.host,
                                port: hc.port.map(UInt16.init) ?? $0.port, check: hc, tls: g.config.tls,
                                proxyProtocol: version)
                }
            }
        }
    }

    /// The PROXY version each group's checks send (as a LOCAL header): the group's
    /// `proxy_protocol`, else the highest version of any listener forwarding to it, so a
    /// target that insists on a header still passes its checks; absent: none.
    static func checkProxyVersions(_ config: Config) -> [String: ProxyProtocolVersion] {
        func version(_ s: ProxyProtocolSetting?) -> ProxyProtocolVersion? {
            switch s {
            case .v1?: .v1
            case .v2?: .v2
            case nil: nil
            }
        }
        var fromListeners = [ProxyProtocolVersion?](repeating: nil, count: config.targetGroups.count)
        for l in config.listeners {
            guard let v = version(l.proxyProtocol) else { continue }
            var forwarded: [Int] = []
            if case .forward(let f) = l.defaultAction { forwarded += f.map(\.group) }
            for r in l.rules { if case .forward(let f) = r.action { forwarded += f.map(\.group) } }
            for g in forwarded where g >= 0 && g < fromListeners.count {
                if (fromListeners[g]?.rawValue ?? 0) < v.rawValue { fromListeners[g] = v }
            }
        }
        var result: [String: ProxyProtocolVersion] = [:]
        for (i, g) in config.targetGroups.enumerated() {
            if let v = version(g.proxyProtocol) ?? fromListeners[i] { result[g.name] = v }
        }
        return result
    }

    public struct CheckTarget: Sendable {
        public var group: String
        public var address: String
        public var host: String
        public var port: UInt16
        public var check: HealthCheckConfig
        /// The group's `tls` settings (https/tls groups); an `https` check of another group
        /// does not verify the target's certificate, as ALB's checks do not.
        public var tls: GroupTLSConfig?
        /// Checks open with a PROXY LOCAL header of this version (`checkProxyVersions`).
        public var proxyProtocol: ProxyProtocolVersion? = nil
    }

    public var config: Config { state.withLock { $0.config } }
    public var statsIds: StatsIds { state.withLock { $0.ids } }

    /// Requests or connections ever sent to the group's current targets.
    public func sentTotal(group: String) -> UInt64 {
        state.withLock { s in
            s.groups.first { $0.config.name == group }?.targets.reduce(UInt64(0)) { $0 &+ $1.runtime.sent.load(ordering: .relaxed) } ?? 0
        }
    }
    public var generation: UInt64 { state.withLock { $0.generation } }

    static func view(_ t: Target, now: UInt64 = Posix.monotonicNanos()) -> TargetView {
        var v = TargetView(address: t.address, zone: t.zone, weight: t.weight, state: t.state.rawValue,
                           reason: t.reason?.rawValue, inFlight: t.runtime.inFlight.load(ordering: .relaxed),
                           isStatic: t.isStatic, registeredAt: t.registeredAt)
        if t.drainDeadline == nil && t.outlier.isEjected(now: now) {
            // Passive checks took it out of rotation for a back-off period.
            v.state = TargetState.unhealthy.rawValue
            v.reason = TargetReason.outlierEjected.rawValue
        }
        return v
    }

    // MARK: plumbing

    /// Runs `change` on the model; when it returns true, persists the registrations (for
    /// changes to them: a refusal to store undoes the change) and publishes the result. Changes
    /// are serialised by `commit` (held while their events are told, so ids follow their order);
    /// the model's lock is never held across the fsync or a bind.
    @discardableResult
    func mutate(persisting: Bool = false, _ change: (inout State) -> Bool) -> Refusal? {
        let refusal: Refusal? = commit.withLock { _ -> Refusal? in
            var saved: State?
            var registrations: [Registration] = []
            let changed = state.withLock { s -> Bool in
                if persisting { saved = s }
                guard change(&s) else {
                    s.pending.removeAll()
                    return false
                }
                if persisting { registrations = ControlPlane.registrations(s) }
                return true
            }
            guard changed else { return nil }
            if persisting {
                do {
                    try persist(registrations)
                } catch {
                    // Not on disk, not applied: the caller gets an error, nothing changed and
                    // no event is told.
                    state.withLock { s in
                        let generation = s.generation
                        if let saved { s = saved }
                        s.generation = generation
                    }
                    return Refusal(status: 500, code: "StateFileError", message: "\(error)")
                }
            }
            // Told with `commit` held: a change's events get their ids (and reach the outboxes)
            // before any later change's (a deregistration before its target's `drained`).
            for e in publishCommitted() { emit(e) }
            return nil
        }
        return refusal
    }

    /// Stops waiting for a drain: forgets and closes `fd`.
    func forgetWaiter(_ fd: Int32) {
        state.withLock { s in s.drainWaiters.removeAll { $0.fd == fd } }
        Posix.close(fd)
    }

    private func isPresent(group: String, runtime: TargetRuntime) -> Bool {
        state.withLock { s in
            s.groups.contains { $0.config.name == group && $0.targets.contains { $0.runtime === runtime } }
        }
    }

    func emit(_ e: Event) { onEvent(e) }
    func clockNow() -> UInt64 { self.clock() }
}
