import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP

/// The immutable snapshot workers run on: listeners, groups and targets compiled from a
/// `Config` into flat arrays with integer indices. Built off the data path (control thread),
/// published through `PlanStore`; a connection keeps the Plan it started with.
public final class Plan: Sendable {
    public let generation: UInt64
    public let config: Config
    let listeners: [ListenerPlan]
    let groups: [GroupPlan]

    /// A listener: where it binds and what it forwards to.
    ///
    /// A class, not a struct: the data path reads it per request and a struct copy would
    /// retain and release every array and string in it (measured: ~10 % of L7 CPU went to
    /// retain/release). @unchecked Sendable: fields are set only while the Plan is built,
    /// before it is published, and never after.
    final class ListenerPlan: @unchecked Sendable {
        var name: String
        var address: SocketAddress
        var idleTimeout: UInt64
        var connectTimeout: UInt64
        /// Groups by index, with weights (one entry for a plain `forward: group`).
        var forward: [WeightedGroup]
        /// Seed for flow hashes so two listeners spread the same client differently.
        var hashSeed: UInt64
        var port: UInt16
        /// What a client sends before its payload: a PROXY header (`accept_proxy_protocol`) or
        /// nothing.
        var preamble = Preamble.none
        /// `tls`/`https` listeners: the context new connections handshake with.
        var tls: TLSServerContext?
        /// How long a client has to complete its TLS handshake.
        var handshakeTimeout: UInt64 = 0
        /// Mutual TLS: the client certificate goes to targets in `X-Sluice-Client-Cert…`.
        var forwardsClientCert = false
        /// `X-Forwarded-Proto`.
        var proto: StaticString = "http"
        /// `proxy_protocol`: the header connections and flows send to targets, unless their
        /// group says otherwise (`GroupPlan.proxySend` wins).
        var proxySend: ProxyProtocolVersion?
        /// `accept_proxy_protocol`: each connection starts with a PROXY header (its preamble).
        var acceptProxy = false
        /// The listener takes TCP connections (every protocol but udp).
        var hasTCP = true
        /// The listener takes datagrams (udp, tcp_udp).
        var hasUDP = false
        /// udp, tcp_udp: flows tracked at once (across workers) and their idle timeout.
        var maxFlows = 0
        var flowIdleTimeout: UInt64 = 0

        init(name: String, address: SocketAddress, idleTimeout: UInt64, connectTimeout: UInt64,
             forward: [WeightedGroup], hashSeed: UInt64, port: UInt16) {
            self.name = name
            self.address = address
            self.idleTimeout = idleTimeout
            self.connectTimeout = connectTimeout
            self.forward = forward
            self.hashSeed = hashSeed
            self.port = port
        }

        /// `access_log` (every protocol).
        var accessLog = AccessLogDestination.off

        // http listeners only
        var isHTTP = false
        var limits = HTTPLimits()
        var desyncMode = DesyncMitigationMode.defensive
        var xff = HTTPWriter.XFFMode.append
        var headerTimeout: UInt64 = 0
        var responseTimeout: UInt64 = 0
        var maxRequestBody: UInt64 = 0
        var retryIdempotent = false
        /// HTTP/2 clients: SETTINGS_MAX_CONCURRENT_STREAMS.
        var maxConcurrentStreams = 128
        var rules: RuleTable?
        /// Rule actions by rule index, then the default action.
        var actions: [CompiledAction] = []
        var defaultAction = 0
        /// Priority of the rule behind each action index (for the access log).
        var rulePriorities: [Int] = []
        /// Stable id for counters (see `StatsIds`).
        var statsId = -1
    }

    /// A target group with its algorithm and its targets. Weights are not part of the Plan's
    /// immutable part: they live in `live`, which the control plane replaces in place (health,
    /// slow start, draining, zones, fail-open) without compiling a new Plan.
    /// A class for the same reason as `ListenerPlan` (and with the same rule).
    final class GroupPlan: @unchecked Sendable {
        var name: String
        var algorithm: BalancerAlgorithm
        var targets: [TargetPlan]
        /// The current weights of `targets`, published in place.
        let live: WeightCell

        init(name: String, algorithm: BalancerAlgorithm, targets: [TargetPlan], weights: [Int]) {
            self.name = name
            self.algorithm = algorithm
            self.targets = targets
            live = WeightCell(GroupWeights(weights: weights, keys: targets.map(\.key), algorithm: algorithm))
        }
        /// For `header_hash` / `cookie_hash`: the lowercased header or cookie name.
        var hashKey: [UInt8] = []
        /// Stickiness: cookie name, lifetime in seconds and the target ↔ cookie value map.
        var stickyCookie: [UInt8] = []
        var stickySeconds: UInt64 = 0
        var sticky: StickyIndex?
        /// Stable id for counters (see `StatsIds`).
        var statsId = -1
        /// `https`/`tls` groups: connections to targets are TLS with this context.
        var tls: TLSClientContext?
        /// The name sent as SNI and verified (`tls.server_name`), else none.
        var serverName: String?
        /// `protocol_version` of http/https groups.
        var protocolVersion = ProtocolVersion.http1
        /// `proxy_protocol` of the group: the header its targets get, whatever the listener says.
        var proxySend: ProxyProtocolVersion?
        /// `max_per_target` (0: unlimited): picking a target then reserves one of its slots.
        var maxPerTarget = 0
        /// `surge_queue` when its size is not 0: the group's queue (shared by every Plan),
        /// its size and its timeout.
        var surge: SurgeQueue? {
            didSet { surgeRef = surge.map { Unmanaged.passUnretained($0) } }
        }
        /// `surge` without reference counting, for the one check per request (`surge` keeps
        /// the queue alive as long as the Plan).
        private var surgeRef: Unmanaged<SurgeQueue>?
        var surgeSize = 0
        var surgeTimeout: UInt64 = 0

        /// Others wait in the group's queue (false without one): a new request queues behind them.
        @inline(__always)
        var surgeHasWaiters: Bool { surgeRef?._withUnsafeGuaranteedRef { !$0.isEmpty } ?? false }
    }

    struct TargetPlan: Sendable {
        var address: SocketAddress
        var key: String
        var zone: String
        var runtime: TargetRuntime
    }

    /// Why a config could not become a Plan (only what validation cannot know).
    public struct CompileError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// A Plan straight from the config: every target at its configured weight.
    public convenience init(config: Config, generation: UInt64) throws(CompileError) {
        let inputs = config.targetGroups.map { g in
            g.targets.map { t in
                TargetInput(address: t.address.description, host: t.address.host, port: t.address.port, zone: t.zone,
                            effectiveWeight: EffectiveWeight.from(configured: t.weight), runtime: TargetRuntime(group: g.name, key: t.address.description,
                                                                  host: t.address.host, port: t.address.port))
            }
        }
        try self.init(config: config, targets: inputs, generation: generation)
    }

    /// A Plan for `config` whose groups hold `targets` (by group index) with the weights the
    /// control plane decided.
    public init(config: Config, targets inputs: [[TargetInput]], generation: UInt64,
                ids: StatsIds? = nil) throws(CompileError) {
        self.generation = generation
        self.config = config
        var groups: [GroupPlan] = []
        for (gi, g) in config.targetGroups.enumerated() {
            var targets: [TargetPlan] = []
            for t in gi < inputs.count ? inputs[gi] : [] {
                guard let address = t.runtime.socketAddress ?? SocketAddress(host: t.host, port: t.port) else {
                    throw CompileError(description: "target group \(g.name): bad address \(t.address)")
                }
                targets.append(TargetPlan(address: address, key: t.address, zone: t.zone,
                                          runtime: t.runtime))
            }
            let gp = GroupPlan(name: g.name, algorithm: Plan.balancerAlgorithm(g.algorithm), targets: targets,
                               weights: gi < inputs.count ? inputs[gi].map(\.effectiveWeight) : [])
            switch g.hashKey {
            case .header(let name)?: gp.hashKey = Array(name.lowercased().utf8)
            case .cookie(let name)?: gp.hashKey = Array(name.utf8)
            case nil: break
            }
            if let s = g.stickiness {
                gp.stickyCookie = Array(s.cookie.utf8)
                gp.stickySeconds = s.duration / Nanoseconds.second
                gp.sticky = StickyIndex(targetKeys: targets.map(\.key), secret: StableHash.hash(g.name))
            }
            gp.statsId = ids?.group(g.name) ?? gi
            gp.protocolVersion = g.protocolVersion
            gp.proxySend = g.proxyProtocol.map(Plan.proxyVersion)
            gp.maxPerTarget = g.maxPerTarget
            if g.surgeQueue.size > 0 {
                gp.surge = SurgeQueues.shared.queue(for: g.name)
                gp.surgeSize = g.surgeQueue.size
                gp.surgeTimeout = g.surgeQueue.timeout
            }
            if let t = g.tls {
                let alpn: [String] = g.protocolKind == .https ? (g.protocolVersion == .http1 ? ["http/1.1"] : ["h2"]) : []
                gp.tls = try TLSContexts.shared.client(t, alpn: alpn, group: g.name)
                gp.serverName = t.serverName
            }
            groups.append(gp)
        }
        var listeners: [ListenerPlan] = []
        for l in config.listeners {
            guard let address = SocketAddress(host: l.bind.host, port: l.bind.port) else {
                throw CompileError(description: "listener \(l.name): bad bind address \(l.bind)")
            }
            var forward: [WeightedGroup] = []
            if case .forward(let f) = l.defaultAction { forward = f }
            let lp = ListenerPlan(name: l.name, address: address, idleTimeout: l.idleTimeout,
                                  connectTimeout: l.connectTimeout, forward: forward,
                                  hashSeed: StableHash.hash(l.name), port: l.bind.port)
            if let h = l.http {
                lp.isHTTP = true
                lp.limits = HTTPLimits(maxRequestLine: h.maxRequestLine, maxHeadBytes: h.maxHeaderBytes,
                                       maxHeaders: h.maxHeaders)
                lp.desyncMode = h.desyncMitigation
                switch h.xff {
                case .append: lp.xff = HTTPWriter.XFFMode.append
                case .preserve: lp.xff = HTTPWriter.XFFMode.preserve
                case .remove: lp.xff = HTTPWriter.XFFMode.remove
                }
                lp.headerTimeout = h.headerTimeout
                lp.responseTimeout = h.responseTimeout
                lp.maxRequestBody = h.maxRequestBody
                lp.retryIdempotent = h.retryIdempotent
                lp.maxConcurrentStreams = h.maxConcurrentStreams
                (lp.rules, lp.actions, lp.defaultAction) = Plan.compileRules(l)
                lp.rulePriorities = l.rules.map(\.priority) + [0]
            }
            lp.statsId = ids?.listener(l.name) ?? listeners.count
            lp.accessLog = l.accessLog
            if let t = l.tls {
                lp.tls = try TLSContexts.shared.server(t, listener: l.name, index: listeners.count)
                lp.handshakeTimeout = t.handshakeTimeout
                lp.forwardsClientCert = t.clientAuth != nil
                lp.proto = "https"
            }
            lp.proxySend = l.proxyProtocol.map(Plan.proxyVersion)
            lp.acceptProxy = l.acceptProxyProtocol
            lp.preamble = l.acceptProxyProtocol ? .proxyHeader : .none
            lp.hasTCP = l.protocolKind != .udp
            if let u = l.udp {
                lp.hasUDP = true
                lp.maxFlows = u.maxFlows
                lp.flowIdleTimeout = u.idleTimeout
            }
            listeners.append(lp)
        }
        self.groups = groups
        self.listeners = listeners
    }

    /// Whether `weights` (by group, then target) are for exactly this Plan's targets, so they
    /// can be published in place instead of compiling a new Plan.
    public func hasTargets(_ inputs: [[TargetInput]]) -> Bool {
        guard inputs.count == groups.count else { return false }
        for (g, group) in groups.enumerated() {
            let ts = group.targets
            guard ts.count == inputs[g].count else { return false }
            for (i, t) in ts.enumerated() where t.key != inputs[g][i].address || t.zone != inputs[g][i].zone
                || t.runtime !== inputs[g][i].runtime {
                return false
            }
        }
        return true
    }

    /// The same group in this Plan as `group` in `old`, with the tried targets mapped by
    /// address; nil when this Plan no longer has the group. Cold path (after a Plan change).
    func rebase(group: Int, tried: TriedTargets, from old: Plan) -> (group: Int, tried: TriedTargets)? {
        let name = old.groups[group].name
        guard let g = groups.firstIndex(where: { $0.name == name }) else { return nil }
        var mapped = TriedTargets()
        for (i, t) in old.groups[group].targets.enumerated() where tried.contains(i) {
            if let j = groups[g].targets.firstIndex(where: { $0.key == t.key }) { mapped.insert(j) }
        }
        return (g, mapped)
    }

    static func proxyVersion(_ setting: ProxyProtocolSetting) -> ProxyProtocolVersion {
        switch setting {
        case .v1: .v1
        case .v2: .v2
        }
    }

    static func balancerAlgorithm(_ kind: AlgorithmKind) -> BalancerAlgorithm {
        switch kind {
        case .roundRobin: return .roundRobin
        case .leastOutstanding: return .leastOutstanding
        case .flowHash: return .flowHash
        // HTTP-only algorithms are refused by config validation until ALB mode lands.
        case .randomTwo: return .randomTwo
        case .headerHash: return .headerHash
        case .cookieHash: return .cookieHash
        }
    }
}
