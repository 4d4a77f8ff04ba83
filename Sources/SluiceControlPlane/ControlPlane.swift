import SluiceBalancer
import SluiceConfig
import SluiceProxy
import SluiceCore
import Synchronization

/// The control plane's model of every target group: static targets from the config file,
/// targets registered at run time, health and draining state. It turns that model into
/// effective weights (health, fail-open, zones, slow start) and Plans, and hands them to the
/// workers through `DataPlane` only. All methods are thread-safe: `state` guards the model
/// and is held only to compute; `commit` orders changes (persist, then publish). Callers are
/// the control API threads, the health checker and the control loop's tick.
public final class ControlPlane: Sendable {
    /// A change worth telling operators about (becomes a control event).
    public struct Event: Sendable {
        public var type: String
        public var group: String?
        public var target: String?
        public var state: String?
        public var reason: String?
        public var message: String?
        /// `scaling_activity` only: activity id, cause, result and `desired` after it (SPEC §11).
        public var activity: String?
        public var cause: String?
        public var result: String?
        public var desired: Int?

        public init(type: String, group: String? = nil, target: String? = nil, state: String? = nil,
                    reason: String? = nil, message: String? = nil, activity: String? = nil, cause: String? = nil,
                    result: String? = nil, desired: Int? = nil) {
            self.type = type
            self.group = group
            self.target = target
            self.state = state
            self.reason = reason
            self.message = message
            self.activity = activity
            self.cause = cause
            self.result = result
            self.desired = desired
        }
    }

    /// A refused control request.
    public struct Refusal: Error, Sendable {
        public var status: Int
        public var code: String
        public var message: String
    }

    /// One target as the API shows it.
    public struct TargetView: Sendable {
        public var address: String
        public var zone: String
        public var weight: Int
        public var state: String
        public var reason: String?
        public var inFlight: Int
        public var isStatic: Bool
        public var registeredAt: String?
    }

    public struct GroupView: Sendable {
        public var name: String
        public var protocolName: String
        public var algorithm: String
        public var crossZone: String
        public var failOpen: Bool
        public var targets: [TargetView]
    }

    /// A run-time registration (what the state file holds).
    public struct Registration: Sendable, Equatable {
        /// Why this registration cannot be applied (state file or API input), or nil.
        public var problem: String? {
            if let p = RegistrationInput.addressProblem(address) { return p }
            if let p = ControlPlane.weightProblem(weight) { return p }
            return RegistrationInput.zoneProblem(zone)
        }
        public var group: String
        public var address: String
        public var zone: String
        public var weight: Int
        public var registeredAt: String
        public init(group: String, address: String, zone: String, weight: Int, registeredAt: String) {
            self.group = group
            self.address = address
            self.zone = zone
            self.weight = weight
            self.registeredAt = registeredAt
        }
    }

    struct Target {
        var address: String
        var host: String
        var port: UInt16
        var zone: String
        var weight: Int
        var isStatic: Bool
        var registeredAt: String?
        let runtime: TargetRuntime
        var health: HealthStateMachine?
        var state: TargetState
        var reason: TargetReason?
        var drainDeadline: UInt64?
        /// Plan generation that first left this target out of new traffic.
        var drainGeneration: UInt64 = 0
        var outlier = OutlierDetector()
        var healthySince: UInt64 = 0
    }

    struct Group {
        var config: TargetGroupConfig
        var targets: [Target]
        var failOpen = false
        var inUse = true
    }

    struct State {
        var config: Config
        var groups: [Group]
        var generation: UInt64 = 0
        /// Where Plans and weights go: the workers, through their only interface.
        var dataPlane: (any DataPlane)?
        let ids = StatsIds()
        /// Events of the change in progress, told once it is stored and published.
        var pending: [Event] = []
        /// The Plan workers run on: weight changes for its targets are published in place.
        var published: Plan?
        /// Deregistrations waiting for their target to be gone: (target, eventfd to signal).
        var drainWaiters: [(runtime: TargetRuntime, fd: Int32)] = []
    }

    /// The model. Held only for short computations, never across I/O (fsync, bind).
    let state: Mutex<State>
    /// Serialises changes: persisting and publishing happen in the order changes were made.
    /// Held across the state file's fsync and a reload's binds, which only other changes wait
    /// for; reads of the model (API views, health check lists) never take it.
    let commit = Mutex<UInt64>(0)
    let onEvent: @Sendable (Event) -> Void
    /// Called with the registrations to persist; throws to refuse the change.
    let persist: @Sendable ([Registration]) throws -> Void
    let clock: @Sendable () -> UInt64

    public init(config: Config, registrations: [Registration],
                persist: @escaping @Sendable ([Registration]) throws -> Void,
                onEvent: @escaping @Sendable (Event) -> Void,
                clock: @escaping @Sendable () -> UInt64 = { Posix.monotonicNanos() }) {
        self.persist = persist
        self.onEvent = onEvent
        self.clock = clock
        let now = clock()
        state = Mutex(State(config: config, groups: ControlPlane.groups(for: config, keeping: [], registrations: registrations, now: now)))
    }

    /// Groups for `config`, carrying over the live state of targets in `old` (same group
    /// name and address) and adding `registrations` for groups that exist.
    static func groups(for config: Config, keeping old: [Group], registrations: [Registration], now: UInt64) -> [Group] {
        var byKey: [String: Target] = [:]
        for g in old { for t in g.targets { byKey[g.config.name + "|" + t.address] = t } }
        let used = Set(config.listeners.flatMap { l -> [Int] in
            var groups: [Int] = []
            func add(_ a: ListenerAction) { if case .forward(let f) = a { groups += f.map(\.group) } }
            add(l.defaultAction)
            l.rules.forEach { add($0.action) }
            return groups
        })
        return config.targetGroups.enumerated().map { gi, g in
            var targets: [Target] = []
            var seen = Set<String>()
            func make(address: String, host: String, port: UInt16, zone: String, weight: Int, isStatic: Bool, at: String?) -> Target {
                if var t = byKey[g.name + "|" + address], t.drainDeadline == nil {
                    t.zone = zone
                    t.weight = weight
                    t.isStatic = isStatic
                    t.registeredAt = at ?? t.registeredAt
                    if g.healthCheck == nil {
                        t.health = nil
                        t.state = .unavailable
                        t.reason = .healthCheckDisabled
                    } else if t.health == nil {
                        t.health = HealthStateMachine(healthyThreshold: g.healthCheck!.healthyThreshold,
                                                      unhealthyThreshold: g.healthCheck!.unhealthyThreshold)
                        t.state = .initial
                        t.reason = .initialHealthChecking
                    }
                    return t
                }
                let checks = g.healthCheck.map {
                    HealthStateMachine(healthyThreshold: $0.healthyThreshold, unhealthyThreshold: $0.unhealthyThreshold)
                }
                return Target(address: address, host: host, port: port, zone: zone, weight: weight, isStatic: isStatic,
                              registeredAt: at, runtime: TargetRuntime(group: g.name, key: address, host: host, port: port), health: checks,
                              state: checks == nil ? .unavailable : .initial,
                              reason: checks == nil ? .healthCheckDisabled : .initialHealthChecking, healthySince: now)
            }
            for t in g.targets {
                let a = t.address.description
                seen.insert(a)
                targets.append(make(address: a, host: t.address.host, port: t.address.port, zone: t.zone,
                                    weight: t.weight, isStatic: true, at: nil))
            }
            for r in registrations where r.group == g.name && !seen.contains(r.address) {
                guard let spec = AddressParser.parse(r.address) else { continue }
                seen.insert(spec.description)
                targets.append(make(address: spec.description, host: spec.host, port: spec.port, zone: r.zone,
                                    weight: r.weight, isStatic: false, at: r.registeredAt))
            }
            // Targets still draining from before stay until they are done.
            for og in old where og.config.name == g.name {
                for t in og.targets where t.drainDeadline != nil && !seen.contains(t.address) { targets.append(t) }
            }
            return Group(config: g, targets: targets, inUse: used.contains(gi))
        }
    }

    /// Registrations read back (state file) checked as the API checks them, before anything
    /// is built from them: the valid ones, and one message per refused one.
    public static func admit(_ registrations: [Registration]) -> (valid: [Registration], problems: [String]) {
        var valid: [Registration] = []
        var problems: [String] = []
        for r in registrations {
            if let problem = r.problem {
                problems.append("registration \(r.group.prefix(200)) \(r.address.prefix(200)): \(problem)")
            } else {
                valid.append(r)
            }
        }
        return (valid, problems)
    }

    // MARK: plans

    /// Attaches the data plane that Plans and weights are published to.
    public func attach(_ dataPlane: any DataPlane) {
        state.withLock { $0.dataPlane = dataPlane }
    }

    /// The Plan for the current model (generation + 1 of the last one built).
    public func makePlan() throws(Plan.CompileError) -> Plan {
        let now = clock()
        var result: Result<Plan, Plan.CompileError> = .failure(Plan.CompileError(description: "no plan"))
        state.withLock { s in
            s.generation += 1
            let inputs = ControlPlane.inputs(&s, now: now)
            result = Result { () throws(Plan.CompileError) -> Plan in
                try Plan(config: s.config, targets: inputs, generation: s.generation, ids: s.ids)
            }
            if case .success(let p) = result { s.published = p }
        }
        return try result.get()
    }

    /// What publishing the model takes.
    enum Publication {
        case nothing
        /// New weights (by group, then target) for the targets of the Plan workers run on.
        case weights([[Int]], of: Plan)
        case plan(Plan)
        case failed(String)
    }

    /// Publishes the model as it is now: weights in place when only weights changed (health,
    /// slow start, draining, zones, fail-open), a new Plan when targets came or went. Call with
    /// `commit` held and `state` not held: the state lock is taken only to compute; the data
    /// plane's work (binding, building Maglev tables) happens outside it. Returns the events
    /// to tell.
    func publishCommitted() -> [Event] {
        let now = clock()
        var work = Publication.nothing
        var events: [Event] = []
        var dataPlane: (any DataPlane)?
        state.withLock { s in
            events = s.pending
            s.pending.removeAll()
            dataPlane = s.dataPlane
            guard s.dataPlane != nil else { return }
            let before = s.groups.map(\.failOpen)
            let inputs = ControlPlane.inputs(&s, now: now)
            events += ControlPlane.failOpenEvents(before: before, s)
            if let p = s.published, p.hasTargets(inputs) {
                work = .weights(inputs.map { $0.map(\.effectiveWeight) }, of: p)
            } else {
                work = ControlPlane.newPlan(&s, inputs)
            }
        }
        guard let dataPlane else { return events }
        if case .weights(let weights, let p) = work, dataPlane.setWeights(weights, of: p) == nil {
            // Not the Plan the workers run on after all: publish a whole one.
            work = state.withLock { s in ControlPlane.newPlan(&s, ControlPlane.inputs(&s, now: now)) }
        }
        var version: UInt64?
        switch work {
        case .nothing:
            break
        case .weights:
            version = dataPlane.routingVersion
        case .plan(let plan):
            do {
                version = try dataPlane.publish(plan)
                state.withLock { $0.published = plan }
            } catch {
                events.append(Event(type: "error", message: "could not publish a new plan: \(error)"))
            }
        case .failed(let message):
            events.append(Event(type: "error", message: "could not build a new plan: \(message)"))
        }
        if let version { markDrainVersion(version) }
        return events
    }

    /// A new Plan for the model's config and `inputs` (next generation).
    static func newPlan(_ s: inout State, _ inputs: [[TargetInput]]) -> Publication {
        s.generation += 1
        do {
            return .plan(try Plan(config: s.config, targets: inputs, generation: s.generation, ids: s.ids))
        } catch {
            return .failed("\(error)")
        }
    }

    /// Draining targets not yet carried by a published routing version are from `version` on.
    func markDrainVersion(_ version: UInt64) {
        state.withLock { s in
            for gi in s.groups.indices {
                for ti in s.groups[gi].targets.indices
                where s.groups[gi].targets[ti].drainDeadline != nil && s.groups[gi].targets[ti].drainGeneration == 0 {
                    s.groups[gi].targets[ti].drainGeneration = version
                }
            }
        }
    }

    /// Events for groups whose fail-open state changed.
    static func failOpenEvents(before: [Bool], _ s: State) -> [Event] {
        s.groups.enumerated().compactMap { i, g in
            guard i < before.count && before[i] != g.failOpen else { return nil }
            return Event(type: g.failOpen ? "fail_open" : "fail_open_ended", group: g.config.name,
                         message: g.failOpen
                             ? "fewer healthy targets than min_healthy: routing to all registered targets"
                             : "enough healthy targets again")
        }
    }

    /// Effective weights of every target (by group, in target order) at `now`, in
    /// `EffectiveWeight` units: health, draining, fail-open, zones and slow start applied, each
    /// clamped to the balancers' range. Also updates each group's fail-open flag.
    static func inputs(_ s: inout State, now: UInt64) -> [[TargetInput]] {
        let zone = s.config.node.zone
        var inputs: [[TargetInput]] = []
        for gi in s.groups.indices {
            // By index, never copying a Target (this runs on every registration and health change).
            let g = s.groups[gi]
            let n = g.targets.count
            var eligible = [Bool](repeating: false, count: n)
            var live = 0
            var healthy = 0
            for i in 0..<n where g.targets[i].drainDeadline == nil {
                live += 1
                let state = g.targets[i].state
                if (state == .healthy || state == .unavailable) && !g.targets[i].outlier.isEjected(now: now) {
                    healthy += 1
                    eligible[i] = true
                }
            }
            let rule: MinHealthyRule
            switch g.config.minHealthy {
            case .count(let n): rule = .count(n)
            case .percent(let p): rule = .percent(p)
            }
            // A group with a surge queue waits for a healthy target rather than failing open
            // when none is healthy (SPEC §12 over §4): requests queue until one turns healthy.
            let queuesInstead = healthy == 0 && g.config.surgeQueue.size > 0
            // A group no listener uses gets no traffic to spread: it never fails open (its
            // targets show `unused`), so alerts on `fail_open` see only groups that serve.
            let failOpen = g.inUse && live > 0 && !queuesInstead
                && FailOpen.engaged(healthy: healthy, registered: live, minHealthy: rule)
            s.groups[gi].failOpen = failOpen
            if failOpen {
                for i in 0..<n { eligible[i] = g.targets[i].drainDeadline == nil }
            }
            let mode: CrossZoneMode
            switch g.config.crossZone {
            case .enabled: mode = .enabled
            case .disabled: mode = .disabled
            case .preferLocal: mode = .preferLocal
            }
            var routing: [ZoneRouting.Target] = []
            routing.reserveCapacity(n)
            for i in 0..<n {
                routing.append((zone: g.targets[i].zone, eligible: eligible[i],
                                weight: EffectiveWeight.from(configured: g.targets[i].weight)))
            }
            // Fail-open spreads over every registered target, whatever the zone rules say.
            var weights = ZoneRouting.weights(targets: routing, localZone: zone, mode: failOpen ? .enabled : mode)
            if g.config.slowStart > 0 && !failOpen {
                for i in weights.indices where weights[i] > 0 && i < n && g.targets[i].state == .healthy {
                    weights[i] = SlowStart.weight(base: weights[i], since: g.targets[i].healthySince, now: now,
                                                  window: g.config.slowStart)
                }
            }
            var group: [TargetInput] = []
            group.reserveCapacity(n)
            for i in 0..<n {
                group.append(TargetInput(address: g.targets[i].address, host: g.targets[i].host, port: g.targets[i].port,
                                         zone: g.targets[i].zone,
                                         effectiveWeight: i < weights.count ? EffectiveWeight.clamp(weights[i]) : 0,
                                         runtime: g.targets[i].runtime))
            }
            inputs.append(group)
        }
        return inputs
    }
}

// MARK: validation where data comes in

extension ControlPlane {
    static func weightProblem(_ weight: Int) -> String? {
        (0...EffectiveWeight.maxConfigured).contains(weight) ? nil : "weight must be 0..999, got \(weight)"
    }
}
