import SluiceBalancer
import SluiceConfig
import SluiceCore

/// The immutable snapshot workers run on: listeners, groups and targets compiled from a
/// `Config` into flat arrays with integer indices. Built off the data path (control thread),
/// published through `PlanStore`; a connection keeps the Plan it started with.
public final class Plan: Sendable {
    public let generation: UInt64
    public let config: Config
    let listeners: [ListenerPlan]
    let groups: [GroupPlan]

    /// A listener: where it binds and what it forwards to.
    struct ListenerPlan: Sendable {
        var name: String
        var address: SocketAddress
        var idleTimeout: UInt64
        var connectTimeout: UInt64
        /// Groups by index, with weights (one entry for a plain `forward: group`).
        var forward: [WeightedGroup]
        /// Seed for flow hashes so two listeners spread the same client differently.
        var hashSeed: UInt64
    }

    /// A target group with its algorithm and, for `flow_hash`, its shared Maglev table.
    struct GroupPlan: Sendable {
        var name: String
        var algorithm: BalancerAlgorithm
        var targets: [TargetPlan]
        var weights: [Int]
        var maglev: MaglevTable?
        /// For `round_robin`: the rotation all workers share.
        var rotation: SharedRotation?
    }

    struct TargetPlan: Sendable {
        var address: SocketAddress
        var key: String
        var zone: String
        var weight: Int
    }

    /// Why a config could not become a Plan (only what validation cannot know).
    public struct CompileError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(config: Config, generation: UInt64) throws(CompileError) {
        self.generation = generation
        self.config = config
        var groups: [GroupPlan] = []
        for g in config.targetGroups {
            var targets: [TargetPlan] = []
            for t in g.targets {
                guard let address = SocketAddress(host: t.address.host, port: t.address.port) else {
                    throw CompileError(description: "target group \(g.name): bad address \(t.address)")
                }
                targets.append(TargetPlan(address: address, key: t.address.description, zone: t.zone, weight: t.weight))
            }
            let weights = targets.map(\.weight)
            let algorithm = Plan.balancerAlgorithm(g.algorithm)
            let maglev = algorithm == .flowHash
                ? MaglevTable(keys: targets.map(\.key), weights: weights,
                              size: MaglevTable.defaultSize)
                : nil
            let rotation = algorithm == .roundRobin ? SharedRotation(weights: weights) : nil
            groups.append(GroupPlan(name: g.name, algorithm: algorithm, targets: targets, weights: weights,
                                    maglev: maglev, rotation: rotation))
        }
        var listeners: [ListenerPlan] = []
        for l in config.listeners {
            guard let address = SocketAddress(host: l.bind.host, port: l.bind.port) else {
                throw CompileError(description: "listener \(l.name): bad bind address \(l.bind)")
            }
            let forward: [WeightedGroup]
            switch l.defaultAction {
            case .forward(let f): forward = f
            }
            listeners.append(ListenerPlan(name: l.name, address: address, idleTimeout: l.idleTimeout,
                                          connectTimeout: l.connectTimeout, forward: forward,
                                          hashSeed: StableHash.hash(l.name)))
        }
        self.groups = groups
        self.listeners = listeners
    }

    static func balancerAlgorithm(_ kind: AlgorithmKind) -> BalancerAlgorithm {
        switch kind {
        case .roundRobin: return .roundRobin
        case .leastOutstanding: return .leastOutstanding
        case .flowHash: return .flowHash
        // HTTP-only algorithms are refused by config validation until ALB mode lands.
        case .randomTwo, .headerHash, .cookieHash: return .roundRobin
        }
    }
}
