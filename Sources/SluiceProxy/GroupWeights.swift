import SluiceBalancer
import Synchronization

/// The weights workers pick a group's targets with, and what is derived from them (the
/// shared round-robin rotation, the Maglev table of the hash algorithms). Immutable; a new
/// one replaces it when health, slow start, draining, zones or fail-open change a weight.
final class GroupWeights: Sendable {
    /// Effective weights by target index of the Plan the cell belongs to (0 = no new traffic).
    let weights: [Int]
    let maglev: MaglevTable?
    /// For `round_robin`: the rotation all workers share.
    let rotation: SharedRotation?

    /// Builds the derived tables off the data path (control thread).
    init(weights: [Int], keys: [String], algorithm: BalancerAlgorithm) {
        let weights = weights.map(EffectiveWeight.clamp)
        self.weights = weights
        maglev = algorithm.usesMaglev ? MaglevTable(keys: keys, weights: weights, size: MaglevTable.defaultSize) : nil
        rotation = algorithm == .roundRobin ? SharedRotation(weights: weights) : nil
    }
}

/// Where the control plane publishes a group's weights in place, for the targets of one Plan.
/// Workers read it only after `PlanStore.routingVersion` moved, so the lock is never taken on
/// the data path's fast path.
final class WeightCell: Sendable {
    private let current: Mutex<GroupWeights>

    init(_ weights: GroupWeights) { current = Mutex(weights) }

    var snapshot: GroupWeights { current.withLock { $0 } }

    func publish(_ weights: GroupWeights) { current.withLock { $0 = weights } }
}
