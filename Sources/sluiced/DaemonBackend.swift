import Foundation
import Logging
import SluiceConfig
import SluiceControl
import SluiceControlPlane
import SluiceEvents
import SluiceProxy
import Synchronization

/// The config file's fingerprint, replaced on every successful reload.
final class ConfigHash: Sendable {
    private let hash: Mutex<String>
    init(_ h: String) { hash = Mutex(h) }
    var value: String {
        get { hash.withLock { $0 } }
    }
    func set(_ h: String) { hash.withLock { $0 = h } }
}

/// The control API's view of the daemon: `ControlBackend` over the control plane, the
/// runtime and the config file. Runs on control-server threads.
final class DaemonBackend: ControlBackend {
    let control: ControlPlane
    let runtime: Runtime
    /// Fleet mode: registrations go through etcd.
    let fleet: Fleet?
    let configPath: String
    let workers: Int
    let started = Date()
    let log: Logger
    let configHash: ConfigHash
    let reloading: @Sendable () -> ReloadResult
    /// Event rules (SPEC §13).
    let eventRules: EventRules
    /// Managed groups (SPEC §11).
    let scaler: Scaler?

    init(control: ControlPlane, runtime: Runtime, fleet: Fleet?, configPath: String, workers: Int, configHash: ConfigHash, log: Logger,
         eventRules: EventRules, scaler: Scaler? = nil, reload: @escaping @Sendable () -> ReloadResult) {
        self.eventRules = eventRules
        self.scaler = scaler
        self.control = control
        self.runtime = runtime
        self.fleet = fleet
        self.configPath = configPath
        self.workers = workers
        self.configHash = configHash
        self.log = log
        reloading = reload
    }

    func status() -> StatusInfo {
        let ids = runtime.stats
        var total: UInt64 = 0
        for s in ids {
            for l in 0..<StatsBlock.maxListeners { total &+= s.connectionsTotal(listener: l) }
        }
        return StatusInfo(version: Sluiced.version, uptimeSeconds: Date().timeIntervalSince(started),
                          zone: control.config.node.zone, workers: workers, configFile: configPath,
                          configHash: configHash.value,
                          connectionsActive: UInt64(max(0, runtime.process.activeConnections.load(ordering: .relaxed))),
                          connectionsTotal: total, planGeneration: runtime.planStore.generation)
    }

    func groups() -> [GroupInfo] { control.groupViews().map(DaemonBackend.info) }

    /// The fleet's live nodes (SPEC §10); standalone, this node alone.
    func nodes() -> [NodeInfo] {
        if let fleet {
            return fleet.nodes().map {
                NodeInfo(name: $0.name, zone: $0.zone, version: $0.version, planGeneration: $0.planGeneration,
                         started: $0.started)
            }
        }
        return [NodeInfo(name: control.config.node.name, zone: control.config.node.zone, version: Sluiced.version,
                  planGeneration: runtime.planStore.generation,
                  started: RFC3339.format(secondsSinceEpoch: started.timeIntervalSince1970))]
    }

    func group(_ name: String) -> GroupInfo? { groups().first { $0.name == name } }

    static func info(_ g: ControlPlane.GroupView) -> GroupInfo {
        GroupInfo(name: g.name, proto: g.protocolName, algorithm: g.algorithm, crossZone: g.crossZone,
                  failOpen: g.failOpen, targets: g.targets.map(info))
    }

    static func info(_ t: ControlPlane.TargetView) -> TargetInfo {
        TargetInfo(address: t.address, zone: t.zone, weight: t.weight, state: t.state, reason: t.reason,
                   inFlight: t.inFlight, isStatic: t.isStatic, registeredAt: t.registeredAt)
    }

    func register(group: String, _ request: RegisterRequest) throws(ControlError) -> (created: Bool, target: TargetInfo) {
        do {
            let r: (created: Bool, target: ControlPlane.TargetView)
            if let fleet {
                r = try fleet.register(group: group, address: request.address, zone: request.zone, weight: request.weight)
            } else {
                r = try control.register(group: group, address: request.address, zone: request.zone,
                                         weight: request.weight, now: ControlEvent.now())
            }
            return (r.created, DaemonBackend.info(r.target))
        } catch {
            throw ControlError(status: error.status, code: error.code, message: error.message)
        }
    }

    func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlError) -> TargetInfo {
        do {
            if let fleet {
                return DaemonBackend.info(try fleet.deregister(group: group, address: address, wait: wait, timeout: timeout))
            }
            return DaemonBackend.info(try control.deregister(group: group, address: address, wait: wait, timeout: timeout))
        } catch {
            throw ControlError(status: error.status, code: error.code, message: error.message)
        }
    }

    func update(group: String, address: String, _ request: UpdateRequest) throws(ControlError) -> TargetInfo {
        do {
            if let fleet {
                return DaemonBackend.info(try fleet.update(group: group, address: address, weight: request.weight,
                                                           zone: request.zone))
            }
            return DaemonBackend.info(try control.update(group: group, address: address, weight: request.weight,
                                                         zone: request.zone))
        } catch {
            throw ControlError(status: error.status, code: error.code, message: error.message)
        }
    }

    func reload() -> ReloadResult { reloading() }

    func metrics() -> String {
        var text = MetricsCollector.text(runtime: runtime, control: control)
        if let fleet {
            var w = MetricsWriter()
            w.gauge("sluice_registry_connected", help: "1 while etcd is reachable, else 0.", value: fleet.isConnected ? 1 : 0)
            for (group, count) in fleet.malformedCounts {
                w.counter("sluice_registry_malformed_total", help: "Registry values ignored as malformed.",
                          labels: [("group", group)], value: count)
            }
            text += w.text
        }
        var w = MetricsWriter()
        MetricsCollector.events(&w, rules: eventRules.metrics())
        return text + w.text
    }

    func failedEvents() -> [FailedEvent] { eventRules.failed() }

    func redeliverEvent(id: String) throws(ControlError) {
        let found: Bool
        do {
            found = try eventRules.redeliver(id: id)
        } catch {
            throw .internal(error.description)
        }
        guard found else { throw .notFound("no failed event \"\(id)\"") }
    }
}


// MARK: scaling (SPEC §11)

extension DaemonBackend {
    func scaling(group: String) throws(ControlError) -> ScalingInfo {
        guard let scaler else { return try notManaged(group) }
        do {
            return DaemonBackend.info(try scaler.view(group: group))
        } catch {
            throw ControlError(status: error.status, code: error.code, message: error.message)
        }
    }

    /// In a fleet only the scaling leader changes `desired` (it alone runs the hooks): another
    /// node hands the count to it through the registry and shows it at once.
    func scale(group: String, desired: Int) throws(ControlError) -> ScalingInfo {
        guard let scaler else { return try notManaged(group) }
        do {
            if let fleet, !scaler.isLeading {
                return DaemonBackend.info(try scaler.request(group: group, desired: desired) { try fleet.requestDesired($0) })
            }
            return DaemonBackend.info(try scaler.setDesired(group: group, desired: desired))
        } catch {
            throw ControlError(status: error.status, code: error.code, message: error.message)
        }
    }

    func scalingGroups() -> [ScalingInfo] { scaler?.views().map(DaemonBackend.info) ?? [] }

    private func notManaged(_ group: String) throws(ControlError) -> ScalingInfo {
        guard self.group(group) != nil else {
            throw ControlError(status: 404, code: "GroupNotFound", message: "no target group named \(group)")
        }
        throw ControlError(status: 409, code: "NotManaged", message: "target group \(group) has no scaling block: it is not managed")
    }

    static func info(_ v: ScalingView) -> ScalingInfo {
        ScalingInfo(group: v.group, desired: v.desired, actual: v.actual, min: v.min, max: v.max,
                    activities: v.activities.map {
                        ScalingActivityInfo(id: $0.id, group: $0.group, kind: $0.kind.rawValue, cause: $0.cause,
                                            description: $0.description, result: $0.result.rawValue,
                                            startTime: $0.startTime, endTime: $0.endTime, target: $0.target,
                                            message: $0.message)
                    })
    }
}
