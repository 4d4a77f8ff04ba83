import SluiceBalancer
import SluiceConfig
import SluiceProxy
import SluiceCore

/// What a fleet (`Fleet`) needs of the model: input checks before a write goes to etcd, and
/// applying the registry's view of every group.
extension ControlPlane {
    /// A registration request checked as `register` checks it: the canonical address, the zone
    /// and weight it gets, and whether the file already lists it (then nothing is written).
    public struct CheckedRegistration: Sendable, Equatable {
        public var group: String
        public var address: String
        public var zone: String
        public var weight: Int
        public var isStatic: Bool
    }

    public func check(group: String, address: String, zone: String?, weight: Int?) throws(Refusal) -> CheckedRegistration {
        let key = try ControlPlane.checkedInput(address: address, zone: zone, weight: weight).description
        let found: (zone: String, isStatic: Bool)? = state.withLock { s in
            guard let g = s.groups.first(where: { $0.config.name == group }) else { return nil }
            return (s.config.node.zone, g.targets.contains { $0.address == key && $0.isStatic })
        }
        guard let found else {
            throw Refusal(status: 404, code: "GroupNotFound", message: "no target group named \(group)")
        }
        return CheckedRegistration(group: group, address: key, zone: zone ?? found.zone, weight: weight ?? 1,
                                   isStatic: found.isStatic)
    }

    /// The current view of a registered (not static) target, if the model has it.
    public func registeredView(group: String, address: String) -> TargetView? {
        state.withLock { s in
            guard let g = s.groups.first(where: { $0.config.name == group }),
                  let t = g.targets.first(where: { $0.address == address && !$0.isStatic }) else { return nil }
            return ControlPlane.view(t)
        }
    }

    /// Whether the group exists.
    public func hasGroup(_ name: String) -> Bool {
        state.withLock { s in s.groups.contains { $0.config.name == name } }
    }

    /// The group's `deregistration_delay` (nanoseconds), nil if there is no such group.
    public func deregistrationDelay(group: String) -> UInt64? {
        state.withLock { s in s.groups.first { $0.config.name == group }?.config.deregistrationDelay }
    }

    /// Whether this node can no longer pick `address` of `group` and has nothing in flight to it:
    /// the model has no target there other than a static one.
    public func hasLetGo(group: String, address: String) -> Bool {
        state.withLock { s in
            guard let g = s.groups.first(where: { $0.config.name == group }) else { return true }
            return !g.targets.contains { $0.address == address && !$0.isStatic }
        }
    }

    /// Makes the registered targets of every group exactly `live` (the registry's view; the
    /// file's static targets stay): new ones are added, changed ones updated, missing ones and
    /// those in `draining` (`group|address`) drain. Idempotent; persisted to the state file.
    public func applyRegistry(_ live: [Registration], draining: Set<String>) {
        let now = clockNow()
        mutate(persisting: true) { s in
            var changed = false
            var wanted: [String: Registration] = [:]
            for r in live { wanted[r.group + "|" + r.address] = r }
            for gi in s.groups.indices {
                let name = s.groups[gi].config.name
                let g = s.groups[gi].config
                for ti in s.groups[gi].targets.indices {
                    let t = s.groups[gi].targets[ti]
                    guard !t.isStatic, t.drainDeadline == nil else { continue }
                    let key = name + "|" + t.address
                    if let r = wanted.removeValue(forKey: key), !draining.contains(key) {
                        if t.zone != r.zone || t.weight != r.weight {
                            s.groups[gi].targets[ti].zone = r.zone
                            s.groups[gi].targets[ti].weight = r.weight
                            changed = true
                        }
                    } else {
                        wanted.removeValue(forKey: key)
                        s.groups[gi].targets[ti].drainDeadline = now &+ g.deregistrationDelay
                        s.groups[gi].targets[ti].state = .draining
                        s.groups[gi].targets[ti].reason = .deregistrationInProgress
                        s.pending.append(Event(type: "deregistration", group: name, target: t.address, state: "draining",
                                               reason: TargetReason.deregistrationInProgress.rawValue))
                        changed = true
                    }
                }
            }
            for r in live {
                let key = r.group + "|" + r.address
                guard wanted[key] != nil, !draining.contains(key),
                      let gi = s.groups.firstIndex(where: { $0.config.name == r.group }),
                      let spec = AddressParser.parse(r.address) else { continue }
                wanted.removeValue(forKey: key)
                // A static target of the same address, or one still draining: the file or the
                // drain owns it for now.
                if s.groups[gi].targets.contains(where: { $0.address == spec.description }) { continue }
                let g = s.groups[gi].config
                let checks = g.healthCheck.map {
                    HealthStateMachine(healthyThreshold: $0.healthyThreshold, unhealthyThreshold: $0.unhealthyThreshold)
                }
                let t = Target(address: spec.description, host: spec.host, port: spec.port, zone: r.zone, weight: r.weight,
                               isStatic: false, registeredAt: r.registeredAt,
                               runtime: TargetRuntime(group: r.group, key: spec.description, host: spec.host, port: spec.port),
                               health: checks, state: checks == nil ? .unavailable : .initial,
                               reason: checks == nil ? .healthCheckDisabled : .initialHealthChecking, healthySince: now)
                s.groups[gi].targets.append(t)
                s.pending.append(Event(type: "registration", group: r.group, target: t.address, state: t.state.rawValue,
                                       reason: t.reason?.rawValue))
                changed = true
            }
            return changed
        }
    }

    /// Emits an event on the control plane's event stream.
    public func tell(type: String, group: String? = nil, target: String? = nil, message: String) {
        emit(Event(type: type, group: group, target: target, message: message))
    }
}
