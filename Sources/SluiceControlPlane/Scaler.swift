import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs the managed groups (SPEC §11) on a thread of its own: every `tickInterval` it
/// measures each group, lets its `ScalingPlanner` and schedule set `desired`, and starts at
/// most one activity per group — a launch while `actual < desired`, a termination while
/// `actual > desired`, a replacement of a target unhealthy too long. Each activity runs its
/// hook on a thread of its own, so one group's slow hook never delays another group.
///
/// Everything outside (registering, draining, targets, hooks, clocks, events, persistence)
/// comes in through `Environment`, so it runs against a ControlPlane in `sluiced` and
/// against plain closures in tests.
public final class Scaler: Sendable {
    public struct Environment: Sendable {
        /// Registers a launched target (state `initial`, then health checks); returns whether
        /// it was new.
        public var register: @Sendable (_ group: String, _ address: String, _ zone: String) throws -> Bool
        /// Deregisters and returns once it has drained (`deregister --wait`, bounded by the
        /// group's deregistration delay).
        public var deregisterAndWait: @Sendable (_ group: String, _ address: String) throws -> Void
        /// The group's targets, nil for a group that does not exist.
        public var targets: @Sendable (_ group: String) -> [ControlPlane.ScalingTarget]?
        /// The group's surge queue length (§12).
        public var queueLength: @Sendable (_ group: String) -> Int = { _ in 0 }
        /// Whether this node scales (standalone: always; in a fleet, the elected leader).
        public var isLeader: @Sendable () -> Bool = { true }
        public var emit: @Sendable (ControlPlane.Event) -> Void = { _ in }
        /// A line for the daemon's log (hooks' stderr, persistence problems).
        public var log: @Sendable (String) -> Void = { _ in }
        public var nodeZone: @Sendable () -> String = { "default" }
        /// Zones of the fleet's live nodes (empty when standalone).
        public var fleetZones: @Sendable () -> [String] = { [] }
        /// Stores every managed group's `desired`.
        public var persist: @Sendable ([String: Int]) -> Void = { _ in }
        /// The counts a previous leader stored (a fleet's etcd), read when this node becomes
        /// leader; nil when there are none to read.
        public var storedDesired: @Sendable () -> [String: Int]? = { nil }
        /// Manual counts other fleet nodes asked for, taken out of the registry (the leader
        /// reads them about once a second).
        public var takeRequests: @Sendable () -> [DesiredRequest] = { [] }
        public var runHook: @Sendable (_ path: String, _ environment: [String: String], _ timeout: UInt64)
            -> HookRunner.Outcome = { HookRunner.run($0, environment: $1, timeout: $2) }
        /// Monotonic nanoseconds.
        public var clock: @Sendable () -> UInt64 = { Posix.monotonicNanos() }
        /// Seconds since the epoch (UTC), for schedules.
        public var wallSeconds: @Sendable () -> Int64 = { Int64(time(nil)) }
        /// RFC 3339 now, for activities.
        public var timestamp: @Sendable () -> String = { FleetRecords.timestamp() }

        public init(register: @escaping @Sendable (String, String, String) throws -> Bool,
                    deregisterAndWait: @escaping @Sendable (String, String) throws -> Void,
                    targets: @escaping @Sendable (String) -> [ControlPlane.ScalingTarget]?) {
            self.register = register
            self.deregisterAndWait = deregisterAndWait
            self.targets = targets
        }
    }

    struct Group {
        var config: ScalingConfig
        var desired: Int
        var planner: ScalingPlanner
        var activities: [ScalingActivity] = []
        /// The activity whose hook runs now.
        var busy: String?
        var lastActivityEnd: UInt64?
        var launchFailures = 0
        var nextLaunchAt: UInt64 = 0
        /// Why `desired` last changed: the cause of the launches and terminations it brings.
        var cause = "maintain"
        var unhealthySince: [String: UInt64] = [:]
        var lastCronCheck: Int64
        /// Metric samples: (time, requests sent in the tick, in flight, targets).
        var samples: [(at: UInt64, sent: UInt64, inFlight: Int, targets: Int)] = []
        var lastSent: [String: UInt64] = [:]
        var actual = 0
    }

    struct State {
        var groups: [String: Group] = [:]
        var order: [String] = []
        var serial: UInt64 = 0
        var stopped = false
        var threads: [String: WorkerThread] = [:]
        var finished: [String] = []
        /// Whether this node led scaling at the last tick.
        var leading = false
        /// When the registry was last read for requests (leader) or the stored counts (others).
        var lastFleetSync: UInt64?
    }

    public static let tickInterval: UInt64 = 250_000_000
    /// The span over which metrics are averaged.
    public static let metricSpan: UInt64 = 3_000_000_000

    let env: Environment
    let state = Mutex(State())
    let thread = Mutex<WorkerThread?>(nil)
    let wake: Int32

    /// `restored`: the persisted `desired` per group (clamped to each config's range).
    public init(config: Config, restored: [String: Int], environment: Environment) throws {
        env = environment
        wake = try Posix.eventfd()
        apply(config, restored: restored)
    }

    deinit { Posix.close(wake) }

    // MARK: lifecycle

    public func start() throws {
        let t = try WorkerThread(name: "scaler") { [self] in
            while !state.withLock({ $0.stopped }) {
                tick()
                Posix.waitReadable(wake, timeoutNanos: Scaler.tickInterval)
                Posix.drainEventfd(wake)
            }
        }
        thread.withLock { $0 = t }
    }

    /// Stops ticking. Activities already running are not waited for (a hook may run up to
    /// its timeout, longer than a shutdown should take): their threads end on their own, and
    /// the daemon exits without them.
    public func stop() {
        state.withLock { $0.stopped = true }
        Posix.signalEventfd(wake)
        thread.withLock { t in
            t?.join()
            t = nil
        }
        joinFinished()
    }

    /// Applies a (re)loaded config: new managed groups start at their persisted or configured
    /// `desired`; changed blocks apply with `desired` clamped; a group without a block is
    /// no longer managed (its targets stay).
    public func apply(_ config: Config, restored: [String: Int] = [:]) {
        let wall = env.wallSeconds()
        var events: [ControlPlane.Event] = []
        let changed = state.withLock { s -> Bool in
            var groups: [String: Group] = [:]
            var order: [String] = []
            var changed = false
            for g in config.targetGroups {
                guard let sc = g.scaling else { continue }
                order.append(g.name)
                if var old = s.groups[g.name] {
                    if old.config.targetTracking != sc.targetTracking || old.config.cooldown != sc.cooldown {
                        old.planner = ScalingPlanner(tracking: sc.targetTracking, cooldown: sc.cooldown)
                    }
                    old.config = sc
                    let clamped = sc.clamp(old.desired)
                    if clamped != old.desired {
                        // A reload moved min or max past `desired`: a change of desired like any other.
                        changed = true
                        events.append(Scaler.changeDesired(&old, name: g.name, to: clamped,
                                                           cause: "configuration reload: min \(sc.min), max \(sc.max)",
                                                           id: nextId(&s), now: env.clock(), time: env.timestamp()))
                    }
                    groups[g.name] = old
                } else {
                    groups[g.name] = Group(config: sc, desired: sc.clamp(restored[g.name] ?? sc.desired),
                                           planner: ScalingPlanner(tracking: sc.targetTracking, cooldown: sc.cooldown),
                                           lastCronCheck: wall)
                    changed = true
                }
            }
            if Set(s.groups.keys) != Set(groups.keys) { changed = true }
            s.groups = groups
            s.order = order
            return changed
        }
        if changed { persist() }
        for e in events { env.emit(e) }
    }

    // MARK: API

    /// Whether this node scales now.
    public var isLeading: Bool { env.isLeader() }

    /// Every managed group, in file order.
    public func views() -> [ScalingView] {
        state.withLock { s in s.order.compactMap { name in s.groups[name].map { Scaler.view(name, $0) } } }
    }

    /// One group; 404 for an unknown group, 409 `NotManaged` for one without `scaling`.
    public func view(group: String) throws(ControlPlane.Refusal) -> ScalingView {
        if let v = state.withLock({ s in s.groups[group].map { Scaler.view(group, $0) } }) { return v }
        throw refusalForUnmanaged(group)
    }

    /// Manual scaling: sets `desired`; out of `min...max` is refused (400 `OutOfRange`).
    public func setDesired(group: String, desired: Int, cause: String = "manual") throws(ControlPlane.Refusal) -> ScalingView {
        var outcome: Result<ScalingView, ControlPlane.Refusal>?
        var event: ControlPlane.Event?
        state.withLock { s in
            guard var g = s.groups[group] else { return }
            if let refusal = Scaler.rangeRefusal(group, g, desired) {
                outcome = .failure(refusal)
                return
            }
            event = Scaler.changeDesired(&g, name: group, to: desired, cause: cause, id: nextId(&s), now: env.clock(), time: env.timestamp())
            s.groups[group] = g
            outcome = .success(Scaler.view(group, g))
        }
        guard let outcome else { throw refusalForUnmanaged(group) }
        if let event {
            persist()
            env.emit(event)
            Posix.signalEventfd(wake)
        }
        switch outcome {
        case .success(let v): return v
        case .failure(let r): throw r
        }
    }

    static func rangeRefusal(_ name: String, _ g: Group, _ desired: Int) -> ControlPlane.Refusal? {
        if (g.config.min...g.config.max).contains(desired) { return nil }
        return ControlPlane.Refusal(status: 400, code: "OutOfRange",
                                    message: "desired \(desired) is out of range for \(name): min \(g.config.min), max \(g.config.max)")
    }

    func refusalForUnmanaged(_ group: String) -> ControlPlane.Refusal {
        if env.targets(group) == nil {
            return ControlPlane.Refusal(status: 404, code: "GroupNotFound", message: "no target group named \(group)")
        }
        return ControlPlane.Refusal(status: 409, code: "NotManaged",
                                    message: "target group \(group) has no scaling block: it is not managed")
    }

    static func view(_ name: String, _ g: Group) -> ScalingView {
        ScalingView(group: name, desired: g.desired, actual: g.actual, min: g.config.min, max: g.config.max,
                    activities: g.activities)
    }

    // MARK: the loop

    /// One round over every managed group (public for tests, which drive it by hand).
    public func tick() {
        joinFinished()
        let leading = env.isLeader()
        if leading && !state.withLock({ $0.leading }) { takeOver() }
        state.withLock { $0.leading = leading }
        syncWithFleet(leading: leading)
        let names = state.withLock { $0.order }
        for name in names {
            guard let targets = env.targets(name) else { continue }
            let queue = env.queueLength(name)
            let now = env.clock()
            let wall = env.wallSeconds()
            var events: [ControlPlane.Event] = []
            var start: (ScalingActivity, Work)?
            var changed = false
            state.withLock { s in
                guard var g = s.groups[name], !s.stopped else { return }
                let live = targets.filter { !$0.draining }
                g.actual = live.count
                Scaler.observe(&g, live: live, now: now)
                guard leading else {
                    g.lastCronCheck = wall
                    s.groups[name] = g
                    return
                }
                // Scheduled actions: the last entry due since the previous tick wins.
                var due: ScheduledAction?
                for entry in g.config.schedule {
                    if let t = entry.schedule.next(after: g.lastCronCheck), t <= wall { due = entry }
                }
                g.lastCronCheck = wall
                if let due, g.config.clamp(due.desired) != g.desired {
                    events.append(Scaler.changeDesired(&g, name: name, to: g.config.clamp(due.desired), cause: "scheduled action \(due.cron)",
                                                       id: nextId(&s), now: now, time: env.timestamp()))
                    changed = true
                }
                let inputs = ScalingPlanner.Inputs(desired: g.desired, actual: g.actual, min: g.config.min, max: g.config.max,
                                                   metric: Scaler.metric(g, now: now), queueLength: queue,
                                                   lastActivity: g.lastActivityEnd, now: now)
                if let d = g.planner.decide(inputs), d.desired != g.desired {
                    events.append(Scaler.changeDesired(&g, name: name, to: d.desired, cause: d.cause, id: nextId(&s), now: now,
                                                       time: env.timestamp()))
                    changed = true
                }
                if g.busy == nil, let work = Scaler.nextWork(g, live: live, now: now) {
                    let id = nextId(&s)
                    let a = ScalingActivity(id: id, group: name, kind: work.kind, cause: work.cause,
                                            description: work.description, startTime: env.timestamp(),
                                            target: work.target?.address)
                    g.busy = id
                    // A replacement: the launch that follows carries its cause ("unhealthy for 5m").
                    if work.replacement { g.cause = work.cause }
                    Scaler.record(&g, a)
                    start = (a, work)
                    events.append(Scaler.event(a, desired: g.desired))
                }
                s.groups[name] = g
            }
            if changed { persist() }
            for e in events { env.emit(e) }
            if let (activity, work) = start { launchThread(activity, work) }
        }
    }

    /// This node just became the leader: continue from the counts the last leader stored.
    func takeOver() {
        guard let stored = env.storedDesired(), !stored.isEmpty else { return }
        if adopt(stored) { env.log("took over scaling: desired counts from the registry") }
    }

    /// Takes `counts` (clamped) as the groups' `desired`, without an activity: they were
    /// decided elsewhere (a previous or the current leader). Persists them when any changed.
    @discardableResult
    func adopt(_ counts: [String: Int]) -> Bool {
        let changed = state.withLock { s -> Bool in
            var changed = false
            for (name, n) in counts {
                guard var g = s.groups[name] else { continue }
                let clamped = g.config.clamp(n)
                if clamped != g.desired {
                    g.desired = clamped
                    changed = true
                }
                s.groups[name] = g
            }
            return changed
        }
        if changed { persist() }
        return changed
    }

    func joinFinished() {
        let done = state.withLock { s -> [WorkerThread] in
            let ids = s.finished
            s.finished.removeAll()
            return ids.compactMap { s.threads.removeValue(forKey: $0) }
        }
        for t in done { t.join() }
    }

    func persist() {
        let desired = state.withLock { s in s.groups.mapValues(\.desired) }
        env.persist(desired)
    }

    // MARK: pieces

    func nextId(_ s: inout State) -> String {
        s.serial &+= 1
        return "\(String(UInt64(max(0, env.wallSeconds())), radix: 36))-\(s.serial)"
    }

    static func changeDesired(_ g: inout Group, name: String, to n: Int, cause: String, id: String, now: UInt64,
                              time: String) -> ControlPlane.Event {
        let before = g.desired
        g.desired = n
        g.cause = cause
        // A new desired count deserves a fresh launch attempt.
        g.launchFailures = 0
        g.nextLaunchAt = 0
        if cause != "manual" && !cause.hasPrefix("scheduled") { g.lastActivityEnd = now }
        let a = ScalingActivity(id: id, group: name, kind: .setDesired, cause: cause,
                                description: "Setting desired from \(before) to \(n)", result: .successful,
                                startTime: time, endTime: time)
        record(&g, a)
        return event(a, desired: n)
    }

    static func record(_ g: inout Group, _ a: ScalingActivity) {
        if let i = g.activities.firstIndex(where: { $0.id == a.id }) {
            g.activities[i] = a
        } else {
            g.activities.append(a)
            if g.activities.count > ScalingActivity.kept { g.activities.removeFirst(g.activities.count - ScalingActivity.kept) }
        }
    }

    static func event(_ a: ScalingActivity, desired: Int?) -> ControlPlane.Event {
        ControlPlane.Event(type: "scaling_activity", group: a.group, target: a.target, message: a.message ?? a.description,
                           activity: a.id, cause: a.cause, result: a.result.rawValue, desired: desired)
    }

    /// Updates unhealthy times and metric samples from this tick's targets.
    static func observe(_ g: inout Group, live: [ControlPlane.ScalingTarget], now: UInt64) {
        var since: [String: UInt64] = [:]
        for t in live where t.state == "unhealthy" { since[t.address] = g.unhealthySince[t.address] ?? now }
        g.unhealthySince = since
        var sent: UInt64 = 0
        var inFlight = 0
        var seen: [String: UInt64] = [:]
        for t in live {
            if let last = g.lastSent[t.address], t.sent >= last { sent &+= t.sent - last }
            seen[t.address] = t.sent
            inFlight &+= max(0, t.inFlight)
        }
        g.lastSent = seen
        g.samples.append((now, sent, inFlight, live.count))
        g.samples.removeAll { now >= $0.at && now - $0.at > metricSpan }
    }

    /// The tracked metric per target over the last `metricSpan`, nil without targets or data.
    static func metric(_ g: Group, now: UInt64) -> Double? {
        guard let tracking = g.config.targetTracking, g.actual > 0, g.samples.count >= 2,
              let first = g.samples.first, now > first.at else { return nil }
        switch tracking.metric {
        case .requestsPerTargetPerSecond:
            // The first sample's requests came before the span measured from it.
            let sent = g.samples.dropFirst().reduce(UInt64(0)) { $0 &+ $1.sent }
            let seconds = Double(now - first.at) / 1e9
            return Double(sent) / seconds / Double(g.actual)
        case .inFlightPerTarget:
            let total = g.samples.reduce(0.0) { $0 + (($1.targets > 0) ? Double($1.inFlight) / Double($1.targets) : 0) }
            return total / Double(g.samples.count)
        }
    }

    static func text(_ error: any Error) -> String {
        if let r = error as? ControlPlane.Refusal { return r.message }
        return "\(error)"
    }
}
