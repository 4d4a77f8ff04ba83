/// A feature of SPEC §2 that a later release brings. Its keys and values are refused with a
/// message that says so, never silently accepted, and told apart from unknown keys (typos).
enum LaterFeature {
    /// Completes "… is not supported yet (REASON)".
    var reason: String {
        switch self {}
    }
}

/// The keys each config section accepts now, and the known keys of later releases.
///
/// A key in a `…Keys` list is read (some only with the one value the balancer implements now,
/// such as `proxy_protocol: off`); a key in a `…Later` table is refused as not supported yet; any
/// other key is unknown.
enum Schema {
    static let topLevelKeys = ["node", "control", "registry", "listeners", "target_groups", "events"]
    static let topLevelLater: KeyValuePairs<String, LaterFeature> = [:]
    static let registryKeys = ["etcd"]
    static let etcdKeys = ["endpoints", "prefix", "dial_timeout", "lease_ttl", "tls"]
    static let etcdTLSKeys = ["ca_file", "cert", "key"]
    static let eventsKeys = ["rules", "retry"]
    static let eventsRetryKeys = ["attempts", "backoff", "max_backoff"]
    static let eventRuleKeys = ["name", "match", "deliver"]
    static let eventDeliverKeys = ["webhook", "exec", "secret_file", "ca_file"]
    /// Largest webhook secret file read.
    static let maxSecretBytes = 4096

    static let nodeKeys = ["name", "zone", "workers", "max_connections", "shutdown_grace"]
    static let controlKeys = ["socket", "metrics", "state"]

    /// Keys of every listener.
    static let commonListenerKeys = [
        "name", "protocol", "bind", "idle_timeout", "connect_timeout", "default", "proxy_protocol",
        "accept_proxy_protocol", "access_log",
    ]
    /// Keys only http and https listeners have.
    static let httpListenerKeys = [
        "rules", "header_timeout", "response_timeout", "desync_mitigation", "xff",
        "max_request_body", "max_header_bytes", "max_headers", "max_request_line", "retry_idempotent",
        "max_concurrent_streams",
    ]
    /// Keys only https and tls listeners have.
    static let tlsListenerKeys = ["tls"]
    /// Keys only udp and tcp_udp listeners have.
    static let udpListenerKeys = ["max_flows"]
    /// Listener protocols that send PROXY headers to targets (`proxy_protocol`).
    static let proxySendingListeners: [ProtocolKind] = [.tcp, .tls, .udp, .tcpUDP]
    /// Listener protocols that read PROXY headers from a balancer in front (`accept_proxy_protocol`).
    static let proxyAcceptingListeners: [ProtocolKind] = [.tcp, .tls, .http, .https]
    /// Group protocols whose targets can be sent PROXY headers (`proxy_protocol`).
    static let proxySendingGroups: [ProtocolKind] = [.tcp, .tls, .udp, .tcpUDP]
    /// `max_flows` of a udp listener: flows (client addresses) at once.
    static let maxFlows = 1...10_000_000
    static let listenerLater: KeyValuePairs<String, LaterFeature> = [:]

    /// The keys a listener of `kind` has, in the order messages list them; every listener key
    /// when the protocol is missing or unknown.
    static func listenerKeys(for kind: ProtocolKind?) -> [String] {
        var keys = commonListenerKeys
        if kind.map(isHTTP) ?? true { keys += httpListenerKeys }
        if kind.map(isTLS) ?? true { keys += tlsListenerKeys }
        if kind.map(isUDP) ?? true { keys += udpListenerKeys }
        return keys
    }

    /// Keys of a listener's `tls:` mapping.
    static let listenerTLSKeys = ["certificates", "min_version", "alpn", "client_auth", "handshake_timeout", "ktls"]
    /// Keys of `tls:` only https listeners have.
    static let httpsListenerTLSKeys = ["client_auth"]
    /// Keys of `tls:` only tls listeners have.
    static let tlsListenerTLSKeys = ["ktls"]
    static let certificateKeys = ["cert", "key"]
    static let clientAuthKeys = ["mode", "ca_file"]
    /// Keys of a group's `tls:` mapping.
    static let groupTLSKeys = ["verify", "ca_file", "server_name"]
    /// Longest `server_name` (a DNS name).
    static let maxServerNameBytes = 253

    static let ruleKeys = ["priority", "when", "then"]
    static let conditionKeys = ["host", "path", "method", "header", "query", "source"]

    static let actionKeys = ["forward", "redirect", "respond"]
    static let weightedGroupKeys = ["group", "weight"]
    static let redirectKeys = ["status", "protocol", "host", "port", "path", "query"]
    static let respondKeys = ["status", "content_type", "body"]
    /// Placeholders of redirect templates (SPEC §3).
    static let redirectPlaceholders = ["protocol", "host", "port", "path", "query"]

    static let groupKeys = [
        "name", "protocol", "algorithm", "targets", "cross_zone", "slow_start", "health_check", "hash_key",
        "stickiness", "deregistration_delay", "min_healthy", "tls", "protocol_version", "proxy_protocol",
        "max_per_target", "surge_queue", "scaling",
    ]
    static let surgeQueueKeys = ["size", "timeout"]
    /// Keys of a group's `scaling:` (SPEC §11).
    static let scalingKeys = [
        "min", "max", "desired", "launch", "terminate", "hook_timeout", "cooldown", "replace_unhealthy_after",
        "schedule", "target_tracking",
    ]
    static let scheduleKeys = ["cron", "desired"]
    static let targetTrackingKeys = ["metric", "target", "window"]
    static let groupLater: KeyValuePairs<String, LaterFeature> = [:]
    static let healthCheckKeys = [
        "protocol", "path", "port", "interval", "timeout", "healthy_threshold", "unhealthy_threshold", "matcher",
    ]
    /// Keys of `health_check` that only http and https checks use.
    static let httpHealthCheckKeys = ["path", "matcher"]
    /// `deregistration_delay:` as ELB: 0s to 1 hour.
    static let deregistrationDelays = 0...(3_600 * Nanoseconds.second)
    /// `slow_start:` when on, as ELB: 30s to 15 minutes.
    static let slowStartWindows = (30 * Nanoseconds.second)...(900 * Nanoseconds.second)
    /// Shortest `health_check.interval` (SPEC §4: fast checks serve tests).
    static let minHealthCheckInterval = 100 * Nanoseconds.millisecond
    static let healthThresholds = 1...10
    /// Status codes a health check matcher may name.
    static let statusCodes = 100...599
    /// gRPC status codes a gRPC health check matcher may name (OK ... UNAUTHENTICATED).
    static let grpcStatusCodes = 0...16
    /// `min_healthy` as a count (an upper bound only to keep arithmetic sane).
    static let minHealthyCounts = 1...1_000_000
    static let minHealthyPercents = 1...100
    static let hashKeyKeys = ["header", "cookie"]
    static let stickinessKeys = ["cookie", "duration"]
    /// Stickiness cookie lifetimes, as ALB: 1 second to 7 days.
    static let stickinessDurations = (1 * Nanoseconds.second)...(7 * 86_400 * Nanoseconds.second)

    static let targetKeys = ["address", "zone", "weight"]

    /// Protocols listeners and groups accept.
    static let supportedProtocols: [ProtocolKind] = [.tcp, .http, .https, .tls, .udp, .tcpUDP]

    /// Whether listeners and groups of `kind` work per HTTP request (L7).
    static func isHTTP(_ kind: ProtocolKind) -> Bool {
        kind == .http || kind == .https
    }

    /// Whether listeners of `kind` terminate TLS and groups of `kind` speak TLS to targets.
    static func isTLS(_ kind: ProtocolKind) -> Bool {
        kind == .https || kind == .tls
    }

    /// Whether listeners of `kind` take datagrams (udp, and tcp_udp's UDP half).
    static func isUDP(_ kind: ProtocolKind) -> Bool {
        kind == .udp || kind == .tcpUDP
    }

    /// Algorithms a group of `kind` accepts now, in the order messages list them.
    static func algorithms(for kind: ProtocolKind?) -> [AlgorithmKind] {
        switch kind {
        case .http, .https: [.roundRobin, .leastOutstanding, .randomTwo, .headerHash, .cookieHash]
        case .tcp, .tls, .udp, .tcpUDP: [.roundRobin, .leastOutstanding, .randomTwo, .flowHash]
        case nil: AlgorithmKind.allCases
        }
    }

    /// Group protocols a listener of `kind` may forward to (SPEC §2: "a group whose protocol
    /// fits the listener"). Plain listeners may forward to TLS groups (re-encryption, as ALB's
    /// http listeners to https groups); TLS listeners to plain groups (termination).
    static func groupProtocols(fitting kind: ProtocolKind) -> [ProtocolKind] {
        switch kind {
        case .tcp, .tls: [.tcp, .tls, .tcpUDP]
        case .http, .https: [.http, .https]
        case .udp: [.udp, .tcpUDP]
        case .tcpUDP: [.tcpUDP]
        }
    }

    /// Longest Unix socket path (`sun_path` is 108 bytes with the terminating NUL).
    static let maxSocketPathBytes = 107
    static let weights = 0...999
    static let workers = 1...1024
    /// Longest host or path pattern of a rule (as ALB).
    static let maxPatternBytes = 128
    /// Longest method, header name or value, query key or value of a rule. Aliases can repeat a
    /// scalar up to `YAMLDocument.maxNodes` times, so without a cap a 16 MiB file could put more
    /// than 2 GiB into a listener's rule arena, whose offsets are `Int32` (trap finding F4); with it
    /// the arena stays below 200 000 × 1 KiB.
    static let maxRuleTextBytes = 1024
}
