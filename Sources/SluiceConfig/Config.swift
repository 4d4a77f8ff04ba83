#if canImport(Glibc)
internal import Glibc
#endif

/// The validated configuration: what `ConfigLoader` produces from a YAML file once every
/// check of SPEC §2 has passed. Plain values, `Sendable`, no Yams types.
///
/// Durations are nanoseconds (`UInt64`); addresses are resolved `SocketAddressSpec`s.
public struct Config: Sendable, Equatable {
    public var node: NodeConfig
    public var control: ControlConfig
    /// `registry:`; nil for a standalone node.
    public var registry: RegistryConfig?
    public var listeners: [ListenerConfig]
    public var targetGroups: [TargetGroupConfig]
    /// `events:` (SPEC §13); nil when absent.
    public var events: EventsConfig?

    public init(node: NodeConfig, control: ControlConfig, registry: RegistryConfig? = nil, listeners: [ListenerConfig],
                targetGroups: [TargetGroupConfig], events: EventsConfig? = nil) {
        self.node = node
        self.control = control
        self.registry = registry
        self.listeners = listeners
        self.targetGroups = targetGroups
        self.events = events
    }

    /// Index of the group named `name`, if any.
    public func groupIndex(named name: String) -> Int? {
        targetGroups.firstIndex { $0.name == name }
    }
}

/// `node:` — this process.
public struct NodeConfig: Sendable, Equatable {
    /// This node's name (`node.name`), unique in a fleet (SPEC §10); the host name by default.
    public var name: String
    /// Availability zone of this node (`node.zone`); targets without a zone get this one.
    public var zone: String
    /// Worker threads; `nil` means `auto` (one per usable CPU).
    public var workers: Int?
    /// Connections across all listeners; beyond it accepting waits.
    public var maxConnections: Int
    /// How long SIGTERM waits for open connections before closing them.
    public var shutdownGrace: UInt64

    public static let defaultZone = "default"
    /// The host name (`gethostname`), or `sluice` when it cannot be read.
    public static var defaultName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "sluice" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "sluice" : name
    }
    public static let defaultMaxConnections = 100_000
    public static let defaultShutdownGrace: UInt64 = 30 * Nanoseconds.second

    public init(name: String = NodeConfig.defaultName, zone: String = NodeConfig.defaultZone, workers: Int? = nil,
                maxConnections: Int = NodeConfig.defaultMaxConnections,
                shutdownGrace: UInt64 = NodeConfig.defaultShutdownGrace) {
        self.name = name
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

/// `proxy_protocol:` when on (`off` is `nil`): the PROXY protocol version sent to targets.
public enum ProxyProtocolSetting: String, Sendable, Equatable, CaseIterable {
    case v1, v2
}

/// The keys of udp listeners (and the UDP half of tcp_udp ones), with their defaults.
public struct UDPListenerSettings: Sendable, Equatable {
    /// Nanoseconds without a datagram either way before a flow ends (`idle_timeout`).
    public var idleTimeout: UInt64
    /// Flows (client addresses) the listener tracks at once (`max_flows`); datagrams of new
    /// clients beyond it are dropped and counted.
    public var maxFlows: Int

    /// NLB's idle timeout for UDP flows.
    public static let defaultIdleTimeout: UInt64 = 120 * Nanoseconds.second
    public static let defaultMaxFlows = 65_536

    public init(idleTimeout: UInt64 = UDPListenerSettings.defaultIdleTimeout,
                maxFlows: Int = UDPListenerSettings.defaultMaxFlows) {
        self.idleTimeout = idleTimeout
        self.maxFlows = maxFlows
    }
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
/// A tcp or tls listener's actions are always `forward`; `redirect` and `respond` occur only on
/// http and https listeners (their `default` and their rules).
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
    /// What happens when no rule matches (for tcp and tls listeners: always, and always a
    /// `forward`).
    public var defaultAction: ListenerAction
    /// `rules:` of an http or https listener, sorted by ascending priority (first match wins);
    /// empty for tcp and tls listeners.
    public var rules: [RuleConfig]
    /// The keys only http and https listeners have, with their defaults filled in; `nil` for
    /// tcp and tls listeners.
    public var http: HTTPListenerSettings?
    /// TLS termination; set exactly for https and tls listeners.
    public var tls: ListenerTLSConfig?
    /// PROXY protocol sent to targets (tcp, tls, udp, tcp_udp listeners); `nil` = off. A
    /// group's own `proxy_protocol` takes precedence for its targets.
    public var proxyProtocol: ProxyProtocolSetting?
    /// Read a PROXY protocol header (v1 or v2) before anything else on each connection (tcp,
    /// tls, http, https listeners); the address it carries is the client's.
    public var acceptProxyProtocol: Bool
    /// Datagram settings; set exactly for udp and tcp_udp listeners.
    public var udp: UDPListenerSettings?
    /// `access_log` of any listener (off by default): one JSON line per request (http,
    /// https; also in `http.accessLog`) or per connection and UDP flow (tcp, tls, udp, tcp_udp).
    public var accessLog: AccessLogDestination

    /// NLB's idle timeout for TCP.
    public static let defaultTCPIdleTimeout: UInt64 = 350 * Nanoseconds.second
    /// ALB's idle timeout (time without a byte either way, also between keep-alive requests).
    public static let defaultHTTPIdleTimeout: UInt64 = 60 * Nanoseconds.second
    public static let defaultConnectTimeout: UInt64 = 3 * Nanoseconds.second

    public init(name: String, protocolKind: ProtocolKind, bind: SocketAddressSpec, idleTimeout: UInt64,
                connectTimeout: UInt64, defaultAction: ListenerAction, rules: [RuleConfig] = [],
                http: HTTPListenerSettings? = nil, tls: ListenerTLSConfig? = nil,
                proxyProtocol: ProxyProtocolSetting? = nil, acceptProxyProtocol: Bool = false,
                udp: UDPListenerSettings? = nil, accessLog: AccessLogDestination? = nil) {
        self.accessLog = accessLog ?? http?.accessLog ?? .off
        self.proxyProtocol = proxyProtocol
        self.acceptProxyProtocol = acceptProxyProtocol
        self.udp = udp
        self.name = name
        self.protocolKind = protocolKind
        self.bind = bind
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.defaultAction = defaultAction
        self.rules = rules
        self.http = http
        self.tls = tls
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
    /// Active health checks; `nil` for `health_check: off` (targets are `unavailable` and get
    /// traffic as if healthy). A group without the key gets `HealthCheckConfig.default(for:)`.
    public var healthCheck: HealthCheckConfig?
    /// Below this many healthy targets the group fails open (SPEC §4).
    public var minHealthy: MinHealthy
    /// How long a deregistered target may drain, in nanoseconds (0s ... 1h).
    public var deregistrationDelay: UInt64
    /// Slow-start window in nanoseconds; 0 = off, else 30s ... 15m.
    public var slowStart: UInt64
    /// `cross_zone:`.
    public var crossZone: CrossZone
    /// TLS to the targets; set for https and tls groups (the defaults when the key is absent),
    /// `nil` for the others.
    public var tls: GroupTLSConfig?
    /// How requests go to the targets of an http or https group; `.http1` for the others.
    public var protocolVersion: ProtocolVersion
    /// PROXY protocol sent to this group's targets (tcp, tls, udp, tcp_udp groups), whatever
    /// the listener says; `nil` = as the listener says.
    public var proxyProtocol: ProxyProtocolSetting?
    /// Requests (L7) or connections (L4) in flight per target; 0 = unlimited (SPEC §12).
    public var maxPerTarget = 0
    /// `surge_queue:` (size 0 = off).
    public var surgeQueue = SurgeQueueConfig()
    /// `scaling:` (SPEC §11); nil for a group that is not managed.
    public var scaling: ScalingConfig?

    /// `healthCheck` defaults to `nil` (off) here, so configs built in code keep the behaviour
    /// they had; the YAML loader fills in `HealthCheckConfig.default(for:)` when the key is absent.
    public init(name: String, protocolKind: ProtocolKind, algorithm: AlgorithmKind, targets: [TargetConfig],
                hashKey: HashKey? = nil, stickiness: Stickiness? = nil, healthCheck: HealthCheckConfig? = nil,
                minHealthy: MinHealthy = .count(1),
                deregistrationDelay: UInt64 = TargetGroupConfig.defaultDeregistrationDelay,
                slowStart: UInt64 = 0, crossZone: CrossZone = .enabled, tls: GroupTLSConfig? = nil,
                protocolVersion: ProtocolVersion = .http1, proxyProtocol: ProxyProtocolSetting? = nil) {
        self.proxyProtocol = proxyProtocol
        self.name = name
        self.protocolKind = protocolKind
        self.algorithm = algorithm
        self.targets = targets
        self.hashKey = hashKey
        self.stickiness = stickiness
        self.healthCheck = healthCheck
        self.minHealthy = minHealthy
        self.deregistrationDelay = deregistrationDelay
        self.slowStart = slowStart
        self.crossZone = crossZone
        self.tls = tls
        self.protocolVersion = protocolVersion
    }

    /// ELB's default deregistration delay: 30 seconds.
    public static let defaultDeregistrationDelay: UInt64 = 30 * Nanoseconds.second
}

/// `min_healthy:` — a count of targets, or a percentage of the registered ones (rounded up).
public enum MinHealthy: Sendable, Equatable {
    case count(Int)
    /// 1 ... 100.
    case percent(Int)
}

/// `cross_zone:` — `true`, `false` or `prefer_local` (SPEC §4, Zones).
public enum CrossZone: String, Sendable, Equatable, CaseIterable {
    /// `true`: every healthy target shares the load by weight.
    case enabled
    /// `false`: only the node's own zone while any of its targets is healthy.
    case disabled
    /// `prefer_local`: in-zone as far as an even load per target allows.
    case preferLocal = "prefer_local"
}

/// `health_check.protocol:`.
public enum HealthCheckProtocol: String, Sendable, Equatable, CaseIterable {
    /// A TCP connect.
    case tcp
    /// `GET path` whose status must fit the matcher (a gRPC health check on grpc groups).
    case http
    /// The same over TLS, verified as the group's `tls` says (`GroupTLSConfig` defaults on
    /// groups without one: verify against the system's trust store).
    case https
}

/// `target_groups[i].health_check` (SPEC §2, §4).
public struct HealthCheckConfig: Sendable, Equatable {
    public var protocolKind: HealthCheckProtocol
    /// Request path of http and https checks (ignored by tcp checks); for gRPC checks the
    /// service name (may be empty: the server as a whole).
    public var path: String
    /// Port to check; `nil` = `traffic-port` (the target's own port).
    public var port: Int?
    /// Nanoseconds between checks of one target, 100ms or more.
    public var interval: UInt64
    /// Nanoseconds a check may take; less than `interval`.
    public var timeout: UInt64
    /// Successes in a row that make an unhealthy target healthy (1 ... 10).
    public var healthyThreshold: Int
    /// Failures in a row that make a healthy target unhealthy (1 ... 10).
    public var unhealthyThreshold: Int
    /// Status codes an http or https check accepts (`"200-399"` is `[200...399]`); for gRPC
    /// checks the `grpc-status` codes (0 ... 16) that pass when the reply is also SERVING.
    public var matcher: [ClosedRange<Int>]
    /// A gRPC health check (`grpc.health.v1.Health/Check` over HTTP/2): set when the group's
    /// `protocol_version` is grpc and the check's protocol is http or https.
    public var grpc: Bool

    public static let defaultInterval: UInt64 = 5 * Nanoseconds.second
    public static let defaultTimeout: UInt64 = 2 * Nanoseconds.second
    public static let defaultMatcher: [ClosedRange<Int>] = [200...399]
    /// gRPC checks pass on status 0 (OK) by default.
    public static let defaultGRPCMatcher: [ClosedRange<Int>] = [0...0]

    public init(protocolKind: HealthCheckProtocol, path: String = "/", port: Int? = nil,
                interval: UInt64 = HealthCheckConfig.defaultInterval,
                timeout: UInt64 = HealthCheckConfig.defaultTimeout, healthyThreshold: Int = 3,
                unhealthyThreshold: Int = 2, matcher: [ClosedRange<Int>] = HealthCheckConfig.defaultMatcher,
                grpc: Bool = false) {
        self.protocolKind = protocolKind
        self.path = path
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.healthyThreshold = healthyThreshold
        self.unhealthyThreshold = unhealthyThreshold
        self.matcher = matcher
        self.grpc = grpc
    }

    /// The check of a group without a `health_check` key: a tcp connect for tcp, tls, udp and
    /// tcp_udp groups, `GET /` matching 200-399 for http groups (over TLS for https groups), and
    /// for grpc groups a gRPC check of the whole server (service "") passing on status 0.
    public static func `default`(for kind: ProtocolKind, protocolVersion: ProtocolVersion = .http1)
        -> HealthCheckConfig
    {
        let check: HealthCheckConfig
        switch kind {
        case .http: check = HealthCheckConfig(protocolKind: .http)
        case .https: check = HealthCheckConfig(protocolKind: .https)
        case .tcp, .tls, .udp, .tcpUDP: return HealthCheckConfig(protocolKind: .tcp)
        }
        guard protocolVersion == .grpc else { return check }
        return HealthCheckConfig(
            protocolKind: check.protocolKind, path: "", matcher: HealthCheckConfig.defaultGRPCMatcher, grpc: true)
    }

    /// Whether an http check's `status` (a gRPC check's `grpc-status`) fits the matcher.
    public func matches(status: Int) -> Bool {
        matcher.contains { $0.contains(status) }
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
