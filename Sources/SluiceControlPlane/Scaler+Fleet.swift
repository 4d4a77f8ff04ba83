/// Manual scaling on any node of a fleet (SPEC §10, §11): only the leader runs hooks, so a
/// node that does not lead leaves the count in the registry (`{prefix}/scaling-requests/{group}`)
/// for the leader, which applies it as a manual activity within about a second and stores the
/// result under `{prefix}/scaling/{group}`, from where every other node follows it.
public struct DesiredRequest: Sendable, Equatable {
    public var group: String
    public var desired: Int
    /// The node it was asked on.
    public var node: String

    public init(group: String, desired: Int, node: String) {
        self.group = group
        self.desired = desired
        self.node = node
    }
}

extension Scaler {
    /// How often the registry is read for requests (leader) or for the stored counts (others).
    public static let fleetSyncInterval: UInt64 = 1_000_000_000

    /// A manual count asked of a node that does not lead: checked as `setDesired` checks it,
    /// handed to `send` (the registry), then shown here at once without an activity (the
    /// leader records the activity when it applies it).
    public func request(group: String, desired: Int,
                        send: (DesiredRequest) throws -> Void) throws(ControlPlane.Refusal) -> ScalingView {
        let g = state.withLock { $0.groups[group] }
        guard let g else { throw refusalForUnmanaged(group) }
        if let refusal = Scaler.rangeRefusal(group, g, desired) { throw refusal }
        do {
            try send(DesiredRequest(group: group, desired: desired, node: ""))
        } catch {
            throw ControlPlane.Refusal(status: 503, code: "RegistryUnavailable",
                                       message: "cannot hand the new desired count to the scaling leader: \(error)")
        }
        adopt([group: desired])
        return try view(group: group)
    }

    /// About once a second: the leader applies the counts other nodes asked for; the others
    /// follow the counts the leader stored. Standalone, both closures answer nothing.
    func syncWithFleet(leading: Bool) {
        let now = env.clock()
        let due = state.withLock { s -> Bool in
            if let last = s.lastFleetSync, now &- last < Scaler.fleetSyncInterval { return false }
            s.lastFleetSync = now
            return true
        }
        guard due else { return }
        if leading {
            for r in env.takeRequests() {
                do {
                    _ = try setDesired(group: r.group, desired: r.desired)
                    env.log("desired \(r.desired) for \(r.group), asked on node \(r.node)")
                } catch {
                    env.log("ignored desired \(r.desired) for \(r.group) asked on node \(r.node): \(error.message)")
                }
            }
        } else if let stored = env.storedDesired() {
            adopt(stored)
        }
    }
}
