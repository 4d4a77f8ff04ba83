import Logging
import SluiceConfig
import SluiceControl
import SluiceControlPlane
import SluiceProxy

extension Sluiced {
    /// The Scaler of managed groups (SPEC §11), wired to the control plane (or the fleet's
    /// registry), `{statedir}/scaling.json` and the event bus; not started.
    static func makeScaler(_ cfg: Config, control: ControlPlane, runtime: Runtime, fleet: Fleet?, leader: FleetLeader?,
                           log: Logger) throws -> Scaler {
        let path = ScalingStore.path(besideStateFile: cfg.control.state)
        var restored: [String: Int] = [:]
        do {
            restored = try ScalingStore.load(path: path)
        } catch {
            log.warning("scaling: \(error); starting from the configured desired counts")
        }
        var env = Scaler.Environment(
            register: { group, address, zone in
                if let fleet {
                    return try fleet.register(group: group, address: address, zone: zone, weight: nil).created
                }
                return try control.register(group: group, address: address, zone: zone, weight: nil, now: ControlEvent.now()).created
            },
            deregisterAndWait: { group, address in
                // `deregister --wait` bounded by the group's deregistration delay (and a little
                // more for the tick that removes the drained target).
                let delay = control.config.targetGroups.first { $0.name == group }?.deregistrationDelay
                    ?? TargetGroupConfig.defaultDeregistrationDelay
                let bound = delay &+ 5_000_000_000
                if let fleet {
                    _ = try fleet.deregister(group: group, address: address, wait: true, timeout: bound)
                } else {
                    _ = try control.deregister(group: group, address: address, wait: true, timeout: bound)
                }
            },
            targets: { control.scalingTargets(group: $0) })
        env.emit = { control.tell($0) }
        // A group whose surge queue holds requests is under pressure; with no targets it scales
        // from zero (SPEC §11, §12).
        env.queueLength = { runtime.surgeQueueLength(group: $0) }
        env.log = { Logger(label: "sluiced.scaling").info("\($0)") }
        env.nodeZone = { control.config.node.zone }
        if let fleet { env.fleetZones = { fleet.nodes().map(\.zone) } }
        if let leader { env.isLeader = { leader.isLeader } }
        env.persist = { desired in
            do {
                try ScalingStore.save(desired, path: path)
            } catch {
                Logger(label: "sluiced.scaling").error("cannot store desired counts: \(error)")
            }
            // In a fleet the leader also writes them to etcd, for the next leader.
            if let fleet, leader?.isLeader == true {
                do {
                    try fleet.storeDesired(desired)
                } catch {
                    Logger(label: "sluiced.scaling").warning("cannot store desired counts in the registry: \(error)")
                }
            }
        }
        if let fleet {
            env.storedDesired = { fleet.storedDesired() }
            env.takeRequests = { fleet.takeDesiredRequests() }
        }
        return try Scaler(config: cfg, restored: restored, environment: env)
    }
}
