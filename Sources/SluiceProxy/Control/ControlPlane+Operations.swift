import SluiceBalancer
import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Registration, deregistration (draining), changes, health results, the periodic tick and
/// reload.
extension ControlPlane {
    /// Registers (or re-registers) a target; persisted before it returns. Returns whether it
    /// was new.
    public func register(group: String, address: String, zone: String?, weight: Int?,
                         now wall: String) throws(Refusal) -> (created: Bool, target: TargetView) {
        guard let spec = AddressParser.parse(address), spec.host != "0.0.0.0", spec.host != "::" else {
            throw Refusal(status: 400, code: "InvalidAddress", message: "expected HOST:PORT or [IPv6]:PORT, got \"\(address)\"")
        }
        if let w = weight, !(0...999).contains(w) {
            throw Refusal(status: 400, code: "InvalidWeight", message: "weight must be 0..999, got \(w)")
        }
        var outcome: Result<(Bool, TargetView), Refusal>!
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
                               registeredAt: wall, runtime: TargetRuntime(group: group, key: key), health: checks,
                               state: checks == nil ? .unavailable : .initial,
                               reason: checks == nil ? .healthCheckDisabled : .initialHealthChecking,
                               healthySince: clockNow())
                s.groups[gi].targets.append(t)
                outcome = .success((true, ControlPlane.view(t)))
                s.pending.append(Event(type: "registered", group: group, target: key, state: t.state.rawValue, reason: t.reason?.rawValue))
            }
            return true
        }
        if let refusal = stored { throw refusal }
        switch outcome! {
        case .success(let r): return r
        case .failure(let e): throw e
        }
    }

    /// Starts draining a target: no new traffic from the next Plan on; gone once nothing is in
    /// flight or the group's deregistration delay ends. With `wait`, returns only then.
    public func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(Refusal) -> TargetView {
        let key = AddressParser.parse(address)?.description ?? address
        var outcome: Result<TargetView, Refusal>!
        var generation: UInt64 = 0
        var runtime: TargetRuntime?
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
                s.pending.append(Event(type: "deregistered", group: group, target: key, state: "draining",
                           reason: TargetReason.deregistrationInProgress.rawValue))
            }
            runtime = s.groups[gi].targets[ti].runtime
            outcome = .success(ControlPlane.view(s.groups[gi].targets[ti]))
            generation = s.generation + 1  // the Plan republished below
            return true
        }
        if let refusal = stored { throw refusal }
        let view: TargetView
        switch outcome! {
        case .success(let v): view = v
        case .failure(let e): throw e
        }
        guard wait, let runtime else { return view }
        let limit = timeout.map { clockNow() &+ $0 }
        // Polled from an API thread (control plane, not the data path): done when no worker
        // can pick the target and nothing is in flight, i.e. when the tick removed it.
        while isPresent(group: group, runtime: runtime) {
            if let l = limit, clockNow() >= l {
                throw Refusal(status: 504, code: "DrainTimeout",
                              message: "\(key) still has \(runtime.inFlight.load(ordering: .relaxed)) in flight")
            }
            usleep(20_000)
        }
        _ = generation
        var done = view
        done.state = "drained"
        done.inFlight = 0
        return done
    }

    /// Changes a target's weight or zone.
    public func update(group: String, address: String, weight: Int?, zone: String?) throws(Refusal) -> TargetView {
        if let w = weight, !(0...999).contains(w) {
            throw Refusal(status: 400, code: "InvalidWeight", message: "weight must be 0..999, got \(w)")
        }
        let key = AddressParser.parse(address)?.description ?? address
        var outcome: Result<TargetView, Refusal>!
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
        switch outcome! {
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
                        let adopted = s.runtime?.planStore.allWorkersAdopted(t.drainGeneration) ?? true
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
                    s.pending.append(Event(type: "drained", group: s.groups[gi].config.name, target: t.address, state: "drained",
                               reason: nil))
                    changed = true
                }
            }
            return changed
        }
        if evict { state.withLock { $0.runtime }?.evict() }
    }

    /// Run-time registrations, for the state file.
    public func registrations() -> [Registration] {
        state.withLock { s in ControlPlane.registrations(s) }
    }

    static func registrations(_ s: State) -> [Registration] {
        s.groups.flatMap { g in
            g.targets.filter { !$0.isStatic && $0.drainDeadline == nil }.map {
                Registration(group: g.config.name, address: $0.address, zone: $0.zone, weight: $0.weight,
                             registeredAt: $0.registeredAt ?? "")
            }
        }
    }

    /// Applies a new config: listeners and groups as the file says, health state and run-time
    /// registrations carried over. Throws (and changes nothing) if the Plan cannot be
    /// published, e.g. a new listener cannot bind.
    public func reload(_ config: Config) throws(Refusal) {
        var failure: Refusal?
        state.withLock { s in
            let saved = s
            s.config = config
            s.groups = ControlPlane.groups(for: config, keeping: s.groups, registrations: ControlPlane.registrations(saved),
                                           now: clockNow())
            guard let runtime = s.runtime else { return }
            s.generation += 1
            do {
                let plan = try ControlPlane.plan(&s, now: clockNow())
                try runtime.publish(plan)
            } catch {
                let generation = s.generation
                s = saved
                s.generation = generation
                failure = Refusal(status: 409, code: "ReloadFailed", message: "\(error)")
            }
        }
        if let f = failure { throw f }
        emit(Event(type: "reload", message: "configuration applied"))
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
    public func checkTargets() -> [(group: String, address: String, host: String, port: UInt16, check: HealthCheckConfig)] {
        state.withLock { s in
            s.groups.flatMap { g -> [(group: String, address: String, host: String, port: UInt16, check: HealthCheckConfig)] in
                guard let hc = g.config.healthCheck else { return [] }
                return g.targets.filter { $0.drainDeadline == nil }.map {
                    (g.config.name, $0.address, $0.host, hc.port.map(UInt16.init) ?? $0.port, hc)
                }
            }
        }
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

    /// Runs `change` under the lock; when it returns true, persists the registrations (for
    /// changes to them) and publishes a new Plan before the lock is released.
    @discardableResult
    func mutate(persisting: Bool = false, _ change: (inout State) -> Bool) -> Refusal? {
        var events: [Event] = []
        let refusal: Refusal? = state.withLock { s in
            let saved = persisting ? s : nil
            defer { s.pending.removeAll() }
            guard change(&s) else { return nil }
            if persisting {
                do {
                    try persist(ControlPlane.registrations(s))
                } catch {
                    // Not on disk, not applied: the caller gets an error, nothing changed and
                    // no event is told.
                    let generation = s.generation
                    s = saved!
                    s.generation = generation
                    return Refusal(status: 500, code: "StateFileError", message: "\(error)")
                }
            }
            events = s.pending
            republishLocked(&s)
            return nil
        }
        for e in events { emit(e) }
        return refusal
    }

    private func isPresent(group: String, runtime: TargetRuntime) -> Bool {
        state.withLock { s in
            s.groups.contains { $0.config.name == group && $0.targets.contains { $0.runtime === runtime } }
        }
    }

    func emit(_ e: Event) { onEvent(e) }
    func clockNow() -> UInt64 { self.clock() }
}
