/// A feature of SPEC §2 that a later release brings. Its keys and values are refused with a
/// message that says so, never silently accepted, and told apart from unknown keys (typos).
enum LaterFeature {
    case applicationLoadBalancing, tlsTermination, udp, proxyProtocol, healthChecks, draining, slowStart,
        zoneRouting, registry

    /// Completes "… is not supported yet (REASON)".
    var reason: String {
        switch self {
        case .applicationLoadBalancing: "ALB mode arrives with a later release"
        case .tlsTermination: "TLS termination arrives with a later release"
        case .udp: "UDP forwarding arrives with a later release"
        case .proxyProtocol: "PROXY protocol arrives with a later release"
        case .healthChecks: "health checks arrive with a later release"
        case .draining: "connection draining arrives with a later release"
        case .slowStart: "slow start arrives with a later release"
        case .zoneRouting: "zone-aware routing arrives with a later release"
        case .registry: "the shared etcd registry arrives with a later release"
        }
    }
}

/// The keys each config section accepts now, and the known keys of later releases.
///
/// A key in a `…Keys` list is read (some only with the one value the balancer implements now,
/// such as `cross_zone: true`); a key in a `…Later` table is refused as not supported yet; any
/// other key is unknown.
enum Schema {
    static let topLevelKeys = ["node", "control", "listeners", "target_groups"]
    static let topLevelLater: KeyValuePairs<String, LaterFeature> = ["registry": .registry]

    static let nodeKeys = ["zone", "workers", "max_connections", "shutdown_grace"]
    static let controlKeys = ["socket", "metrics", "state"]

    static let listenerKeys = [
        "name", "protocol", "bind", "idle_timeout", "connect_timeout", "default", "proxy_protocol",
        "accept_proxy_protocol",
    ]
    static let listenerLater: KeyValuePairs<String, LaterFeature> = [
        "rules": .applicationLoadBalancing,
        "tls": .tlsTermination,
        "desync_mitigation": .applicationLoadBalancing,
        "xff": .applicationLoadBalancing,
        "access_log": .applicationLoadBalancing,
        "header_timeout": .applicationLoadBalancing,
        "response_timeout": .applicationLoadBalancing,
        "max_request_body": .applicationLoadBalancing,
        "retry_idempotent": .applicationLoadBalancing,
    ]

    static let actionKeys = ["forward"]
    static let actionLater: KeyValuePairs<String, LaterFeature> = [
        "redirect": .applicationLoadBalancing,
        "respond": .applicationLoadBalancing,
    ]
    static let weightedGroupKeys = ["group", "weight"]

    static let groupKeys = ["name", "protocol", "algorithm", "targets", "cross_zone", "slow_start", "health_check"]
    static let groupLater: KeyValuePairs<String, LaterFeature> = [
        "stickiness": .applicationLoadBalancing,
        "hash_key": .applicationLoadBalancing,
        "deregistration_delay": .draining,
        "min_healthy": .healthChecks,
    ]

    static let targetKeys = ["address", "zone", "weight"]

    /// Protocols listeners and groups accept now.
    static let supportedProtocols: [ProtocolKind] = [.tcp]

    /// Why a protocol is not accepted yet.
    static func laterFeature(of kind: ProtocolKind) -> LaterFeature? {
        switch kind {
        case .tcp: nil
        case .http, .https: .applicationLoadBalancing
        case .tls: .tlsTermination
        case .udp, .tcpUDP: .udp
        }
    }

    static let supportedAlgorithms: [AlgorithmKind] = [.roundRobin, .leastOutstanding, .flowHash]
    static let laterAlgorithms: [AlgorithmKind] = [.randomTwo, .headerHash, .cookieHash]

    /// Group protocols a listener of `kind` may forward to (SPEC §2: "a group whose protocol
    /// fits the listener").
    static func groupProtocols(fitting kind: ProtocolKind) -> [ProtocolKind] {
        switch kind {
        case .tcp: [.tcp]
        case .tls: [.tcp, .tls]
        case .http, .https: [.http, .https]
        case .udp: [.udp]
        case .tcpUDP: [.tcpUDP]
        }
    }

    /// Longest Unix socket path (`sun_path` is 108 bytes with the terminating NUL).
    static let maxSocketPathBytes = 107
    static let weights = 0...999
    static let workers = 1...1024
}
