import Foundation
import SluiceConfig
import SluiceCore
import SluiceRegistry
import Synchronization

/// A node of a fleet (SPEC §10): registrations live in etcd under `{prefix}/targets/`, every
/// node applies them to its own `ControlPlane` (static targets stay per node), announces
/// itself under `{prefix}/nodes/` bound to its lease, and drains deregistered targets
/// fleet-wide (`{prefix}/drained/`).
///
/// One thread of its own (`run`) keeps the lease alive (every ttl/3), (re)reads everything
/// when needed, acknowledges drains and deletes finished ones; the etcd watch calls back on
/// its thread. The control API's threads call `register`/`update`/`deregister`/`nodes`.
public final class Fleet: Sendable {
    public struct Settings: Sendable {
        public var registry: RegistryConfig
        public var nodeName: String
        public var zone: String
        public var version: String
        public var started: String
        public init(registry: RegistryConfig, nodeName: String, zone: String, version: String, started: String) {
            self.registry = registry
            self.nodeName = nodeName
            self.zone = zone
            self.version = version
            self.started = started
        }
    }

    /// A registration as etcd has it.
    struct Known: Sendable {
        var record: FleetRecords.TargetRecord
        var modRevision: Int64
        /// Monotonic time this node first saw it draining (when `since` cannot be read).
        var seenDraining: UInt64?
    }

    struct State: Sendable {
        /// `group|address` → registration.
        var targets: [String: Known] = [:]
        var connected = false
        var lease: Int64?
        var needsResync = true
        var watch: EtcdWatch?
        /// Draining targets this node has acknowledged under its current lease.
        var acked: Set<String> = []
        var malformed: [String: UInt64] = [:]
        var nodes: [FleetRecords.NodeRecord] = []
        var announcedGeneration: UInt64 = 0
        var stopped = false
        var lastApply: UInt64 = 0
    }

    let settings: Settings
    let keys: FleetRecords.Keys
    let client: EtcdClient
    let control: ControlPlane
    let planGeneration: @Sendable () -> UInt64
    let state = Mutex(State())
    /// Applies serialised: each applies the newest view, never an older one after a newer.
    let applying = Mutex<UInt64>(0)
    let wake: Int32
    let thread = Mutex<WorkerThread?>(nil)

    /// Most distinct group labels `sluice_registry_malformed_total` gets; more go to `other`.
    static let maxMalformedLabels = 64

    public init(settings: Settings, control: ControlPlane, planGeneration: @escaping @Sendable () -> UInt64) throws {
        self.settings = settings
        self.control = control
        self.planGeneration = planGeneration
        keys = FleetRecords.Keys(prefix: settings.registry.prefix)
        let tls = settings.registry.tls.map {
            EtcdTLS(caFile: $0.caFile, certificateFile: $0.certificateFile, keyFile: $0.keyFile)
        }
        let dial = Duration.nanoseconds(Int64(clamping: settings.registry.dialTimeout))
        client = try EtcdClient(endpoints: settings.registry.endpoints, tls: tls, dialTimeout: dial,
                                requestTimeout: max(dial, .seconds(2)))
        wake = try Posix.eventfd()
    }

    deinit { Posix.close(wake) }

    /// A leader election among the fleet's nodes for `{prefix}/leader/scaling` on this node's
    /// etcd client (not started).
    public func scalingLeader(onChange: @escaping @Sendable (Bool) -> Void) throws -> FleetLeader {
        try FleetLeader(client: client, key: keys.leaderScaling, identity: settings.nodeName,
                        ttlSeconds: Int64(clamping: settings.registry.leaseTTLSeconds), onChange: onChange)
    }

    // MARK: lifecycle

    public func start() throws {
        let t = try WorkerThread(name: "fleet") { [self] in run() }
        thread.withLock { $0 = t }
    }

    /// Stops the thread and the watch and revokes the lease (the node leaves the fleet now).
    public func stop() {
        state.withLock { $0.stopped = true }
        Posix.signalEventfd(wake)
        thread.withLock { t in
            t?.join()
            t = nil
        }
        let (watch, lease) = state.withLock { s in
            defer { s.watch = nil; s.lease = nil }
            return (s.watch, s.lease)
        }
        watch?.cancel()
        if let lease { try? client.revokeLease(lease) }
    }

    public var isConnected: Bool { state.withLock { $0.connected } }

    public var malformedCounts: [(group: String, count: UInt64)] {
        state.withLock { s in s.malformed.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func run() {
        var backoff: UInt64 = 100_000_000
        var nextKeepalive: UInt64 = 0
        while !stopped {
            let now = Posix.monotonicNanos()
            let (needsResync, lease) = state.withLock { ($0.needsResync, $0.lease) }
            do throws(EtcdError) {
                if lease == nil {
                    try grantAndAnnounce()
                    nextKeepalive = now &+ keepaliveInterval
                }
                if needsResync { try resync() }
                if let lease = state.withLock({ $0.lease }), now >= nextKeepalive {
                    let ttl = try client.keepAlive(lease: lease)
                    if ttl <= 0 {
                        // Expired while we could not reach etcd: its keys are gone.
                        state.withLock { s in s.lease = nil; s.acked.removeAll() }
                        continue
                    }
                    nextKeepalive = now &+ keepaliveInterval
                }
                setConnected(true, reason: nil)
                try announceIfChanged()
                try drainWork()
                backoff = 100_000_000
            } catch {
                switch error {
                case .server(let code, _) where code == EtcdError.codeNotFound:
                    // The lease is unknown (expired, or etcd lost its data): grant again.
                    state.withLock { s in s.lease = nil; s.acked.removeAll() }
                case .unavailable, .timeout:
                    setConnected(false, reason: "\(error)")
                case .server, .malformed:
                    // etcd answered: reachable, but this round failed; retried after back-off.
                    control.tell(type: "error", message: "registry: \(error)")
                }
                Posix.waitReadable(wake, timeoutNanos: backoff)
                Posix.drainEventfd(wake)
                backoff = min(backoff &* 2, 5_000_000_000)
                continue
            }
            // Drains that ended locally, re-registrations of a target that was draining here.
            if Posix.monotonicNanos() &- state.withLock({ $0.lastApply }) >= 500_000_000 { apply() }
            Posix.waitReadable(wake, timeoutNanos: 100_000_000)
            Posix.drainEventfd(wake)
        }
    }

    private var keepaliveInterval: UInt64 {
        UInt64(clamping: max(1, min(settings.registry.leaseTTLSeconds, 3600))) * 1_000_000_000 / 3
    }

    private func setConnected(_ connected: Bool, reason: String?) {
        let changed = state.withLock { s -> Bool in
            defer { s.connected = connected }
            return s.connected != connected
        }
        guard changed else { return }
        if connected {
            control.tell(type: "registry_connected", message: "connected to etcd")
        } else {
            control.tell(type: "registry_lost",
                         message: "etcd unreachable, serving the last known registrations: \(reason ?? "")")
        }
    }

    // MARK: node key and lease

    private func nodeRecord() -> FleetRecords.NodeRecord {
        FleetRecords.NodeRecord(name: settings.nodeName, zone: settings.zone, version: settings.version,
                                planGeneration: planGeneration(), started: settings.started)
    }

    private func grantAndAnnounce() throws(EtcdError) {
        let lease = try client.grantLease(ttl: Int64(clamping: settings.registry.leaseTTLSeconds))
        let record = nodeRecord()
        try client.put(key: keys.node(settings.nodeName), value: FleetRecords.encode(record), lease: lease)
        state.withLock { s in
            s.lease = lease
            s.acked.removeAll()
            s.announcedGeneration = record.planGeneration
        }
    }

    private func announceIfChanged() throws(EtcdError) {
        let (lease, announced) = state.withLock { ($0.lease, $0.announcedGeneration) }
        guard let lease, planGeneration() != announced else { return }
        let record = nodeRecord()
        try client.put(key: keys.node(settings.nodeName), value: FleetRecords.encode(record), lease: lease)
        state.withLock { $0.announcedGeneration = record.planGeneration }
    }

    // MARK: reading registrations

    /// Reads every registration, replaces the known ones with them, applies, and watches from
    /// the read's revision + 1.
    private func resync() throws(EtcdError) {
        let range = try client.range(key: keys.targets, prefix: true)
        var targets: [String: Known] = [:]
        for kv in range.kvs {
            if let (key, known) = decode(kv) { targets[key] = known }
        }
        // The old watch is joined before the read's view replaces the known one, and the new
        // watch starts after it: no event is applied out of order.
        let old = state.withLock { s in
            defer { s.watch = nil }
            return s.watch
        }
        old?.cancel()
        state.withLock { s in
            for (key, k) in targets where k.record.draining {
                targets[key]?.seenDraining = s.targets[key]?.seenDraining ?? k.seenDraining
            }
            s.targets = targets
        }
        let watch = try client.watch(prefix: keys.targets, startRevision: range.revision &+ 1) { [self] event in
            watched(event)
        }
        state.withLock { s in
            s.watch = watch
            s.needsResync = false
        }
        apply()
    }

    private func watched(_ event: EtcdWatchEvent) {
        switch event {
        case .put(let kv):
            guard let (key, known) = decode(kv) else {
                // A malformed value replaces whatever was there: that registration is no more.
                if let name = keys.targetName(kv.key) {
                    state.withLock { _ = $0.targets.removeValue(forKey: name.group + "|" + name.address) }
                    apply()
                }
                return
            }
            state.withLock { s in
                var k = known
                if k.record.draining {
                    k.seenDraining = s.targets[key]?.seenDraining ?? Posix.monotonicNanos()
                } else {
                    s.acked.remove(key)
                }
                s.targets[key] = k
            }
            apply()
        case .delete(let key, _):
            guard let name = keys.targetName(key) else { return }
            state.withLock { s in
                _ = s.targets.removeValue(forKey: name.group + "|" + name.address)
                s.acked.remove(name.group + "|" + name.address)
            }
            apply()
        case .progress:
            break
        case .disconnected(let reason):
            setConnected(false, reason: reason)
        case .compacted:
            state.withLock { $0.needsResync = true }
            Posix.signalEventfd(wake)
        }
    }

    /// A registration from etcd, checked as the API checks one; nil (with an event and a count)
    /// when malformed.
    func decode(_ kv: EtcdKeyValue) -> (String, Known)? {
        guard let name = keys.targetName(kv.key) else {
            malformed(group: "", key: kv.key, "not {prefix}/targets/{group}/{address}")
            return nil
        }
        let record: FleetRecords.TargetRecord
        switch FleetRecords.decodeTarget(kv.value) {
        case .failure(let p):
            malformed(group: name.group, key: kv.key, p.description)
            return nil
        case .success(let r):
            record = r
        }
        let checked: ControlPlane.CheckedRegistration
        do {
            checked = try control.check(group: name.group, address: name.address, zone: record.zone, weight: record.weight)
        } catch {
            malformed(group: name.group, key: kv.key, error.message)
            return nil
        }
        guard checked.address == name.address else {
            malformed(group: name.group, key: kv.key, "address not in canonical form (\(checked.address.prefix(200)))")
            return nil
        }
        return (name.group + "|" + name.address,
                Known(record: record, modRevision: kv.modRevision,
                      seenDraining: record.draining ? Posix.monotonicNanos() : nil))
    }

    private func malformed(group: String, key: String, _ problem: String) {
        state.withLock { s in
            let label = s.malformed[group] != nil || s.malformed.count < Fleet.maxMalformedLabels ? group : "other"
            s.malformed[label, default: 0] &+= 1
        }
        control.tell(type: "error", group: group.isEmpty ? nil : String(group.prefix(200)),
                     message: "ignored \(key.prefix(300)): \(problem)")
    }

    /// Applies the known registrations to the control plane (idempotent).
    func apply() {
        applying.withLock { _ in
            let targets = state.withLock { s -> [String: Known] in
                s.lastApply = Posix.monotonicNanos()
                return s.targets
            }
            // When this node learnt of a registration (kept for those it already has).
            let wall = FleetRecords.timestamp()
            var live: [ControlPlane.Registration] = []
            var draining = Set<String>()
            for (key, k) in targets {
                guard let bar = key.firstIndex(of: "|") else { continue }
                let group = String(key[..<bar])
                let address = String(key[key.index(after: bar)...])
                live.append(ControlPlane.Registration(group: group, address: address, zone: k.record.zone,
                                                      weight: k.record.weight, registeredAt: wall))
                if k.record.draining { draining.insert(key) }
            }
            control.applyRegistry(live, draining: draining)
        }
    }

    // MARK: the control API

    private func unavailable() -> ControlPlane.Refusal {
        ControlPlane.Refusal(status: 503, code: "RegistryUnavailable",
                             message: "etcd is unreachable: registrations cannot be changed now (the node keeps serving the last known ones)")
    }

    private func write(_ key: String, _ record: FleetRecords.TargetRecord) throws(ControlPlane.Refusal) -> Int64 {
        guard isConnected else { throw unavailable() }
        do {
            return try client.put(key: key, value: FleetRecords.encode(record))
        } catch {
            setConnected(false, reason: "\(error)")
            throw unavailable()
        }
    }

    /// Registers through etcd; answers once etcd accepted the write.
    public func register(group: String, address: String, zone: String?, weight: Int?)
        throws(ControlPlane.Refusal) -> (created: Bool, target: ControlPlane.TargetView) {
        let c = try control.check(group: group, address: address, zone: zone, weight: weight)
        if c.isStatic {
            return try control.register(group: group, address: address, zone: zone, weight: weight,
                                        now: FleetRecords.timestamp())
        }
        let key = c.group + "|" + c.address
        let record = FleetRecords.TargetRecord(zone: c.zone, weight: c.weight)
        // New or not is decided before the write: this node's own watch may apply the write
        // before the answer comes back (then it would look as if it had been there already).
        let existed = state.withLock { s in s.targets[key].map { !$0.record.draining } ?? false }
        let revision = try write(keys.target(group: c.group, address: c.address), record)
        // Acknowledgements of an earlier drain of the same address must not count for the next.
        _ = try? client.delete(key: keys.acks(group: c.group, address: c.address), prefix: true)
        state.withLock { s in
            if (s.targets[key]?.modRevision ?? 0) < revision { s.targets[key] = Known(record: record, modRevision: revision) }
        }
        apply()
        return (!existed, view(c, state: "initial"))
    }

    public func update(group: String, address: String, weight: Int?, zone: String?) throws(ControlPlane.Refusal)
        -> ControlPlane.TargetView {
        let c = try control.check(group: group, address: address, zone: zone, weight: weight)
        let key = c.group + "|" + c.address
        guard var known = state.withLock({ $0.targets[key] }), !known.record.draining else {
            throw ControlPlane.Refusal(status: 404, code: "TargetNotFound", message: "\(c.address) is not registered in \(group)")
        }
        if let weight { known.record.weight = weight }
        if let zone { known.record.zone = zone }
        let revision = try write(keys.target(group: c.group, address: c.address), known.record)
        let record = known.record
        state.withLock { s in
            if (s.targets[key]?.modRevision ?? 0) < revision { s.targets[key] = Known(record: record, modRevision: revision) }
        }
        apply()
        return view(c, state: "initial")
    }

    /// Marks the registration draining in etcd; with `wait`, returns when the key is gone
    /// (every live node let go of it, or the group's deregistration delay passed).
    public func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlPlane.Refusal)
        -> ControlPlane.TargetView {
        let c = try control.check(group: group, address: address, zone: nil, weight: nil)
        if c.isStatic {
            // The file's targets are this node's own: drained here, as a standalone node does.
            return try control.deregister(group: group, address: address, wait: wait, timeout: timeout)
        }
        let key = c.group + "|" + c.address
        guard var known = state.withLock({ $0.targets[key] }) else {
            throw ControlPlane.Refusal(status: 404, code: "TargetNotFound", message: "\(c.address) is not registered in \(group)")
        }
        if !known.record.draining {
            known.record.draining = true
            known.record.since = FleetRecords.timestamp()
            let revision = try write(keys.target(group: c.group, address: c.address), known.record)
            let record = known.record
            state.withLock { s in
                if (s.targets[key]?.modRevision ?? 0) < revision {
                    s.targets[key] = Known(record: record, modRevision: revision, seenDraining: Posix.monotonicNanos())
                }
            }
            apply()
            Posix.signalEventfd(wake)
        }
        var v = view(c, state: "draining")
        v.zone = known.record.zone
        v.weight = known.record.weight
        guard wait else { return v }
        let limit = timeout.map { Posix.monotonicNanos() &+ $0 }
        while state.withLock({ $0.targets[key] != nil }) {
            if let limit, Posix.monotonicNanos() >= limit {
                throw ControlPlane.Refusal(status: 504, code: "DrainTimeout",
                                           message: "\(c.address) is still draining on some node of the fleet")
            }
            usleep(20_000)
        }
        v.state = "drained"
        v.inFlight = 0
        return v
    }

    private func view(_ c: ControlPlane.CheckedRegistration, state: String) -> ControlPlane.TargetView {
        if let v = control.registeredView(group: c.group, address: c.address) { return v }
        return ControlPlane.TargetView(address: c.address, zone: c.zone, weight: c.weight, state: state, reason: nil,
                                       inFlight: 0, isStatic: false, registeredAt: nil)
    }

    /// The fleet's live nodes (`{prefix}/nodes/`), the last ones read when etcd is unreachable.
    public func nodes() -> [FleetRecords.NodeRecord] {
        guard isConnected else {
            let cached = state.withLock { $0.nodes }
            return cached.isEmpty ? [nodeRecord()] : cached
        }
        do {
            let range = try client.range(key: keys.nodes, prefix: true)
            let nodes = range.kvs.compactMap { kv in keys.nodeName(kv.key).flatMap { FleetRecords.decodeNode(name: $0, kv.value) } }
            state.withLock { $0.nodes = nodes }
            return nodes
        } catch {
            let cached = state.withLock { $0.nodes }
            return cached.isEmpty ? [nodeRecord()] : cached
        }
    }

    // MARK: fleet-wide draining

    /// Acknowledges draining targets this node has let go of; deletes those every live node has
    /// acknowledged or whose deregistration delay has passed.
    private func drainWork() throws(EtcdError) {
        let (draining, lease, acked) = state.withLock { s in
            (s.targets.filter { $0.value.record.draining }, s.lease, s.acked)
        }
        guard !draining.isEmpty, let lease else { return }
        var liveNodes: Set<String>?
        for (key, known) in draining {
            guard let bar = key.firstIndex(of: "|") else { continue }
            let group = String(key[..<bar])
            let address = String(key[key.index(after: bar)...])
            if !acked.contains(key) && control.hasLetGo(group: group, address: address) {
                try client.put(key: keys.ack(group: group, address: address, node: settings.nodeName), value: Array("{}".utf8),
                               lease: lease)
                _ = state.withLock { $0.acked.insert(key) }
            }
            if liveNodes == nil {
                let range = try client.range(key: keys.nodes, prefix: true)
                liveNodes = Set(range.kvs.compactMap { keys.nodeName($0.key) })
            }
            let acks = try client.range(key: keys.acks(group: group, address: address), prefix: true)
            let ackers = Set(acks.kvs.map { String($0.key.dropFirst(keys.acks(group: group, address: address).count)) })
            let delay = control.deregistrationDelay(group: group) ?? 0
            var expired = false
            if let since = known.record.since.flatMap(FleetRecords.seconds) {
                expired = Date().timeIntervalSince1970 - since >= Double(delay) / 1e9
            } else if let seen = known.seenDraining {
                expired = Posix.monotonicNanos() &- seen >= delay
            }
            guard expired || (liveNodes ?? []).isSubset(of: ackers) else { continue }
            let targetKey = keys.target(group: group, address: address)
            _ = try client.txn(EtcdTxn(
                compare: [EtcdCompare(key: targetKey, .modRevision(known.modRevision), .equal)],
                success: [.delete(targetKey), .delete(key: keys.acks(group: group, address: address), prefix: true)]))
        }
    }
}
