/// The validated configuration: what `ConfigLoader` produces from a YAML file once every
/// check of SPEC §2 has passed. Plain values, `Sendable`, no Yams types.
///
/// Durations are nanoseconds (`UInt64`); addresses are resolved `SocketAddressSpec`s.
public struct Config: Sendable, Equatable {
    public var node: NodeConfig
    public var control: ControlConfig
    public var listeners: [ListenerConfig]
    public var targetGroups: [TargetGroupConfig]

    public init(node: NodeConfig, control: ControlConfig, listeners: [ListenerConfig], targetGroups: [TargetGroupConfig]) {
        self.node = node
        self.control = control
        self.listeners = listeners
        self.targetGroups = targetGroups
    }

    /// Index of the group named `name`, if any.
    public func groupIndex(named name: String) -> Int? {
        targetGroups.firstIndex { $0.name == name }
    }
}

/// `node:` — this process.
public struct NodeConfig: Sendable, Equatable {
    /// Availability zone of this node (`node.zone`); targets without a zone get this one.
    public var zone: String
    /// Worker threads; `nil` means `auto` (one per usable CPU).
    public var workers: Int?
    /// Connections across all listeners; beyond it accepting waits.
    public var maxConnections: Int
    /// How long SIGTERM waits for open connections before closing them.
    public var shutdownGrace: UInt64

    public static let defaultZone = "default"
    public static let defaultMaxConnections = 100_000
    public static let defaultShutdownGrace: UInt64 = 30 * Nanoseconds.second

    public init(zone: String = NodeConfig.defaultZone, workers: Int? = nil,
                maxConnections: Int = NodeConfig.defaultMaxConnections,
                shutdownGrace: UInt64 = NodeConfig.defaultShutdownGrace) {
        self.zone = zone
        self.workers = workers
        self.maxConnections = maxConnections
        self.shutdownGrace = shutdownGrace
    }
}

/// `control:` — the control plane's files and endpoints.
public struct ControlConfig: Sendable, Equatable {
    public var socket: String
    public var metrics: SocketAddressSpec?
    public var state: String

    public static let defaultSocket = "/run/sluice/control.sock"
    public static let defaultState = "/var/lib/sluice/state.json"

    public init(socket: String = ControlConfig.defaultSocket, metrics: SocketAddressSpec? = nil,
                state: String = ControlConfig.defaultState) {
        self.socket = socket
        self.metrics = metrics
        self.state = state
    }
}

/// Listener and target-group protocols of SPEC §2.
public enum ProtocolKind: String, Sendable, Equatable, CaseIterable {
    case http, https, tcp, tls, udp, tcpUDP = "tcp_udp"
}

/// One weighted destination of a `forward` action.
public struct WeightedGroup: Sendable, Equatable {
    /// Index into `Config.targetGroups`.
    public var group: Int
    public var weight: Int
    public init(group: Int, weight: Int) {
        self.group = group
        self.weight = weight
    }
}

/// What a listener does with a connection (L4) or request (L7).
///
/// A tcp listener's actions are always `forward`; `redirect` and `respond` occur only on http
/// listeners (their `default` and their rules).
public enum ListenerAction: Sendable, Equatable {
    /// Forward to one group (a single entry with weight 1) or split by weight.
    case forward([WeightedGroup])
    /// Answer with a redirect built from the request (SPEC §3).
    case redirect(RedirectAction)
    /// Answer with a fixed response; no target is involved.
    case respond(FixedResponse)
}

/// `listeners[i]`.
public struct ListenerConfig: Sendable, Equatable {
    public var name: String
    public var protocolKind: ProtocolKind
    public var bind: SocketAddressSpec
    /// Nanoseconds without a byte either way before the connection is closed.
    public var idleTimeout: UInt64
    /// Nanoseconds allowed for a target connection to open.
    public var connectTimeout: UInt64
    /// What happens when no rule matches (for tcp listeners: always, and always a `forward`).
    public var defaultAction: ListenerAction
    /// `rules:` of an http listener, sorted by ascending priority (first match wins); empty
    /// for tcp listeners.
    public var rules: [RuleConfig]
    /// The keys only http listeners have, with their defaults filled in; `nil` for tcp
    /// listeners.
    public var http: HTTPListenerSettings?

    /// NLB's idle timeout for TCP.
    public static let defaultTCPIdleTimeout: UInt64 = 350 * Nanoseconds.second
    /// ALB's idle timeout (time without a byte either way, also between keep-alive requests).
    public static let defaultHTTPIdleTimeout: UInt64 = 60 * Nanoseconds.second
    public static let defaultConnectTimeout: UInt64 = 3 * Nanoseconds.second

    public init(name: String, protocolKind: ProtocolKind, bind: SocketAddressSpec, idleTimeout: UInt64,
                connectTimeout: UInt64, defaultAction: ListenerAction, rules: [RuleConfig] = [],
                http: HTTPListenerSettings? = nil) {
        self.name = name
        self.protocolKind = protocolKind
        self.bind = bind
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.defaultAction = defaultAction
        self.rules = rules
        self.http = http
    }
}

/// Balancing algorithms of SPEC §4.
public enum AlgorithmKind: String, Sendable, Equatable, CaseIterable {
    case roundRobin = "round_robin"
    case leastOutstanding = "least_outstanding"
    case randomTwo = "random_two"
    case flowHash = "flow_hash"
    case headerHash = "header_hash"
    case cookieHash = "cookie_hash"
}

/// `target_groups[i].targets[j]`.
public struct TargetConfig: Sendable, Equatable {
    public var address: SocketAddressSpec
    public var zone: String
    /// 0...999; 0 means no new traffic.
    public var weight: Int
    public init(address: SocketAddressSpec, zone: String, weight: Int) {
        self.address = address
        self.zone = zone
        self.weight = weight
    }
}

/// `target_groups[i]`.
public struct TargetGroupConfig: Sendable, Equatable {
    public var name: String
    public var protocolKind: ProtocolKind
    public var algorithm: AlgorithmKind
    public var targets: [TargetConfig]
    /// What `header_hash` / `cookie_hash` hash on; set exactly for those two algorithms.
    public var hashKey: HashKey?
    /// Cookie-based stickiness (http groups only); `nil` when off.
    public var stickiness: Stickiness?

    public init(name: String, protocolKind: ProtocolKind, algorithm: AlgorithmKind, targets: [TargetConfig],
                hashKey: HashKey? = nil, stickiness: Stickiness? = nil) {
        self.name = name
        self.protocolKind = protocolKind
        self.algorithm = algorithm
        self.targets = targets
        self.hashKey = hashKey
        self.stickiness = stickiness
    }
}

/// `hash_key:` of a `header_hash` or `cookie_hash` group.
public enum HashKey: Sendable, Equatable {
    /// A request header, by name in lowercase.
    case header(String)
    /// A cookie, by name (case-sensitive, as cookies are).
    case cookie(String)
}

/// `stickiness: { cookie: NAME, duration: 1h }`: Sluice sets cookie `NAME` naming the target
/// it chose; later requests carrying it go to that target while it is healthy.
public struct Stickiness: Sendable, Equatable {
    public var cookie: String
    /// Cookie lifetime in nanoseconds (`Max-Age`), 1s ... 7 days.
    public var duration: UInt64

    /// ALB's default stickiness duration: one day.
    public static let defaultDuration: UInt64 = 86_400 * Nanoseconds.second

    public init(cookie: String, duration: UInt64 = Stickiness.defaultDuration) {
        self.cookie = cookie
        self.duration = duration
    }
}

/// Nanosecond constants for durations.
public enum Nanoseconds {
    public static let millisecond: UInt64 = 1_000_000
    public static let second: UInt64 = 1_000_000_000
}
