import SluiceBalancer

/// The messages the control plane sends the data plane, and all it may read back. Nothing
/// else crosses: the control plane (model, health checks, registrations, persistence) lives
/// in its own module and holds the data plane only as `any DataPlane`. The same messages can
/// later cross a process boundary (a master that hands listeners to a new binary).
///
/// Every call is made from control-plane threads; none blocks a worker.
public protocol DataPlane: AnyObject, Sendable {
    /// A new routing plan (reload; targets added or removed): new listeners are bound first,
    /// then workers switch over, keeping pooled target connections of targets that stay.
    /// Returns the routing version that carries it.
    func publish(_ plan: Plan) throws(Runtime.BindError) -> UInt64

    /// New effective weights (by group, then target, in `EffectiveWeight` units) for the
    /// targets of `plan`, applied in place to the running pickers: no rules recompiled, no
    /// Maglev table rebuilt for a group whose weights did not change, no pooled connection
    /// closed. Returns the routing version that carries them (the current one when nothing
    /// changed), or nil when `plan` is not the published Plan or its targets differ.
    func setWeights(_ weights: [[Int]], of plan: Plan) -> UInt64?

    /// Close the connections still open to targets whose `TargetRuntime.evicted` is set.
    func evict()

    /// Stop accepting; finish what is in flight within the grace period.
    func requestStop()

    /// The newest routing version published (plans and weights).
    var routingVersion: UInt64 { get }

    /// True once every worker applied routing version `version` or later.
    func allWorkersAdopted(_ version: UInt64) -> Bool

    /// Requests (L7) or connections (L4) waiting in group `group`'s surge queue now (0 when it
    /// has none): target tracking's pressure and scale-from-zero's trigger (SPEC §11, §12).
    func surgeQueueLength(group: String) -> Int
}

extension DataPlane {
    /// Test doubles without a data path have no queue.
    public func surgeQueueLength(group: String) -> Int { 0 }
}

extension Runtime: DataPlane {
    public func setWeights(_ weights: [[Int]], of plan: Plan) -> UInt64? {
        guard plan === planStore.plan, weights.count == plan.groups.count else { return nil }
        var changed = false
        for (g, group) in plan.groups.enumerated() {
            guard weights[g].count == group.targets.count else { return nil }
            if group.live.snapshot.weights != weights[g] {
                // Derived tables (Maglev, rotation) are built here, on the caller's thread.
                group.live.publish(GroupWeights(weights: weights[g], keys: group.targets.map(\.key),
                                                algorithm: group.algorithm))
                changed = true
            }
        }
        return changed ? weightsPublished() : planStore.routingVersion
    }

    public var routingVersion: UInt64 { planStore.routingVersion }

    public func allWorkersAdopted(_ version: UInt64) -> Bool { planStore.allWorkersAdopted(version) }
}
