/// `registry:` — the shared etcd registry of a fleet (SPEC §10). Absent: a standalone node.
public struct RegistryConfig: Sendable, Equatable {
    /// `registry.etcd.endpoints`: `http://HOST:PORT` or `https://HOST:PORT` URLs.
    public var endpoints: [String]
    /// `registry.etcd.prefix`: every key lives under it; starts with `/`, no trailing `/`.
    public var prefix: String
    /// `registry.etcd.dial_timeout` (nanoseconds).
    public var dialTimeout: UInt64
    /// `registry.etcd.lease_ttl` in whole seconds: a node whose lease expires leaves the fleet.
    public var leaseTTLSeconds: Int
    /// `registry.etcd.tls`, for `https://` endpoints.
    public var tls: RegistryTLSConfig?

    public static let defaultPrefix = "/sluice"
    public static let defaultDialTimeout: UInt64 = 2 * Nanoseconds.second
    public static let defaultLeaseTTLSeconds = 10
    /// Lease TTLs accepted, in seconds.
    public static let leaseTTLRange = 1...3600

    public init(endpoints: [String], prefix: String = RegistryConfig.defaultPrefix,
                dialTimeout: UInt64 = RegistryConfig.defaultDialTimeout,
                leaseTTLSeconds: Int = RegistryConfig.defaultLeaseTTLSeconds, tls: RegistryTLSConfig? = nil) {
        self.endpoints = endpoints
        self.prefix = prefix
        self.dialTimeout = dialTimeout
        self.leaseTTLSeconds = leaseTTLSeconds
        self.tls = tls
    }

    /// Why `url` is not an etcd endpoint (`http://HOST:PORT`, `https://HOST:PORT`), or nil.
    public static func endpointProblem(_ url: String) -> String? {
        let rest: Substring
        if url.hasPrefix("http://") {
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            rest = url.dropFirst(8)
        } else {
            return "expected http://HOST:PORT or https://HOST:PORT"
        }
        guard !rest.contains("/"), !rest.contains("@"), let spec = AddressParser.parse(String(rest)), spec.port > 0 else {
            return "expected http://HOST:PORT or https://HOST:PORT"
        }
        // Names are not resolved by the etcd client (a blocking lookup): IP literals only.
        let hostText = rest.hasPrefix("[") ? rest.dropFirst().prefix { $0 != "]" } : rest.prefix { $0 != ":" }
        guard hostText == "localhost" || hostText == Substring(spec.host) else {
            return "an etcd endpoint's host must be an IP address or localhost"
        }
        return nil
    }

    /// Why `prefix` is not a key prefix, or nil.
    public static func prefixProblem(_ prefix: String) -> String? {
        guard prefix.hasPrefix("/"), prefix.utf8.count >= 2, !prefix.hasSuffix("/") else {
            return "expected a key prefix such as /sluice/prod (starting with /, not ending with /)"
        }
        guard !prefix.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }), prefix.utf8.count <= 512 else {
            return "a key prefix may not contain spaces or control characters and has at most 512 bytes"
        }
        return nil
    }
}

/// `registry.etcd.tls`: the CA that signed etcd's certificates, and a client certificate.
public struct RegistryTLSConfig: Sendable, Equatable {
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}
