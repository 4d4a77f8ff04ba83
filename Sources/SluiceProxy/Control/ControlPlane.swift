import SluiceBalancer
import SluiceConfig
import SluiceCore
import Synchronization

/// The control plane's model of every target group: static targets from the config file,
/// targets registered at run time, health and draining state. It turns that model into
/// Plans (effective weights after health, fail-open, zones and slow start) and publishes
/// them through the Runtime. All methods are thread-safe (one lock); callers are the
/// control API threads, the health checker and the control loop's tick.
public final class ControlPlane: Sendable {
    /// A change worth telling operators about (becomes a control event).
    public struct Event: Sendable {
        public var type: String
        public var group: String?
        public var target: String?
        public var state: String?
        public var reason: String?
        public var message: String?
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
        var runtime: Runtime?
        let ids = StatsIds()
        /// Events of the change in progress, told once it is stored and published.
        var pending: [Event] = []
    }

    let state: Mutex<State>
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
                              registeredAt: at, runtime: TargetRuntime(group: g.name, key: address), health: checks,
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

    // MARK: plans

    /// Attaches the runtime that Plans are published to.
    public func attach(_ runtime: Runtime) {
        state.withLock { $0.runtime = runtime }
    }

    /// The Plan for the current model (generation + 1 of the last one built).
    public func makePlan() throws(Plan.CompileError) -> Plan {
        let now = clock()
        var result: Result<Plan, Plan.CompileError>!
        state.withLock { s in
            s.generation += 1
            result = Result { () throws(Plan.CompileError) -> Plan in try ControlPlane.plan(&s, now: now) }
        }
        return try result.get()
    }

    /// Builds and publishes a new Plan. Call with the lock held (inside `state.withLock`).
    func republishLocked(_ s: inout State) {
        guard let runtime = s.runtime else { return }
        s.generation += 1
        let before = s.groups.map(\.failOpen)
        do {
            let plan = try ControlPlane.plan(&s, now: clock())
            try runtime.publish(plan)
        } catch {
            onEvent(Event(type: "error", message: "could not publish a new plan: \(error)"))
        }
        announceFailOpen(before: before, s)
    }

    /// Events for groups whose fail-open state changed.
    func announceFailOpen(before: [Bool], _ s: State) {
        for (i, g) in s.groups.enumerated() where i < before.count && before[i] != g.failOpen {
            onEvent(Event(type: g.failOpen ? "fail_open" : "fail_open_ended", group: g.config.name,
                          message: g.failOpen
                              ? "fewer healthy targets than min_healthy: routing to all registered targets"
                              : "enough healthy targets again"))
        }
    }

    static func plan(_ s: inout State, now: UInt64) throws(Plan.CompileError) -> Plan {
        let ids = s.ids
        let zone = s.config.node.zone
        var inputs: [[TargetInput]] = []
        for gi in s.groups.indices {
            let g = s.groups[gi]
            let live = g.targets.filter { $0.drainDeadline == nil }
            let healthy = live.filter { ($0.state == .healthy || $0.state == .unavailable) && !$0.outlier.isEjected(now: now) }
            let rule: MinHealthyRule
            switch g.config.minHealthy {
            case .count(let n): rule = .count(n)
            case .percent(let p): rule = .percent(p)
            }
            let failOpen = !live.isEmpty && FailOpen.engaged(healthy: healthy.count, registered: live.count, minHealthy: rule)
            s.groups[gi].failOpen = failOpen
            let mode: CrossZoneMode
            switch g.config.crossZone {
            case .enabled: mode = .enabled
            case .disabled: mode = .disabled
            case .preferLocal: mode = .preferLocal
            }
            let eligible = g.targets.map { t -> Bool in
                guard t.drainDeadline == nil else { return false }
                if failOpen { return true }
                return (t.state == .healthy || t.state == .unavailable) && !t.outlier.isEjected(now: now)
            }
            // Fail-open spreads over every registered target, whatever the zone rules say.
            var weights = ZoneRouting.weights(
                targets: g.targets.enumerated().map { (zone: $1.zone, eligible: eligible[$0], weight: $1.weight) },
                localZone: zone, mode: failOpen ? .enabled : mode)
            if g.config.slowStart > 0 && !failOpen {
                for i in weights.indices where weights[i] > 0 && g.targets[i].state == .healthy {
                    weights[i] = SlowStart.weight(base: weights[i], since: g.targets[i].healthySince, now: now,
                                                  window: g.config.slowStart)
                }
            }
            inputs.append(g.targets.enumerated().map { i, t in
                TargetInput(address: t.address, host: t.host, port: t.port, zone: t.zone, effectiveWeight: weights[i],
                            runtime: t.runtime)
            })
            for (i, t) in g.targets.enumerated() where t.drainDeadline != nil && t.drainGeneration == 0 {
                s.groups[gi].targets[i].drainGeneration = s.generation
            }
        }
        return try Plan(config: s.config, targets: inputs, generation: s.generation, ids: ids)
    }
}
