/// `listeners[i].tls` of an `https` or `tls` listener (SPEC §2, §3 Mutual TLS, §5): TLS is
/// terminated with these certificates and settings.
///
/// Every file path (`cert`, `key`, `ca_file`) is absolute after loading: a relative path in the
/// file resolves against the directory of the config file (for `ConfigLoader.parse(yaml:file:)`,
/// the directory of `file`; the current directory when `file` has none). The loader checks that
/// each names a readable regular file, not what is in it: OpenSSL reads the files when the
/// listener is set up, and `location` says where to point its errors.
public struct ListenerTLSConfig: Sendable, Equatable {
    /// The certificates, chosen by SNI; the first is the default. At least one.
    public var certificates: [CertificatePair]
    /// Oldest protocol version a client may negotiate (`min_version`, default `"1.2"`).
    public var minVersion: TLSMinVersion
    /// ALPN protocols offered, in preference order: `h2` and `http/1.1`, no repeats (may be
    /// empty). Default `ListenerTLSConfig.defaultALPN(for:)`.
    public var alpn: [String]
    /// Mutual TLS (`client_auth`, https listeners only); `nil` when off.
    public var clientAuth: ClientAuthConfig?
    /// Nanoseconds a client has to finish its handshake (`handshake_timeout`, default 10s).
    public var handshakeTimeout: UInt64
    /// Hand the record layer to the kernel (kTLS) after the handshake, so `splice(2)` still
    /// works (`ktls`, tls listeners only, default false).
    public var ktls: Bool
    /// `FILE:LINE:COLUMN` of the listener's `tls` key, for errors found after loading.
    public var location: String

    public static let defaultHandshakeTimeout: UInt64 = 10 * Nanoseconds.second
    /// ALPN values a listener may offer.
    public static let alpnProtocols = ["h2", "http/1.1"]

    /// `["h2", "http/1.1"]` for https listeners (HTTP/2 preferred); none for the others (a tls
    /// listener passes bytes and speaks no protocol of its own).
    public static func defaultALPN(for kind: ProtocolKind) -> [String] {
        kind == .https ? alpnProtocols : []
    }

    public init(certificates: [CertificatePair], minVersion: TLSMinVersion = .v1_2, alpn: [String],
                clientAuth: ClientAuthConfig? = nil,
                handshakeTimeout: UInt64 = ListenerTLSConfig.defaultHandshakeTimeout, ktls: Bool = false,
                location: String = "") {
        self.certificates = certificates
        self.minVersion = minVersion
        self.alpn = alpn
        self.clientAuth = clientAuth
        self.handshakeTimeout = handshakeTimeout
        self.ktls = ktls
        self.location = location
    }
}

/// One `tls.certificates[j]` entry: a PEM certificate chain (leaf first) and its private key.
public struct CertificatePair: Sendable, Equatable {
    /// Absolute path of the certificate chain.
    public var cert: String
    /// Absolute path of the private key.
    public var key: String
    /// `FILE:LINE:COLUMN` of this list item, for errors found when OpenSSL loads the pair.
    public var location: String

    public init(cert: String, key: String, location: String = "") {
        self.cert = cert
        self.key = key
        self.location = location
    }
}

/// `tls.min_version:` — `"1.2"` or `"1.3"`.
public enum TLSMinVersion: String, Sendable, Equatable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// `tls.client_auth.mode:` (SPEC §3, Mutual TLS).
public enum ClientAuthMode: String, Sendable, Equatable, CaseIterable {
    /// Refuse a handshake without a client certificate that chains to `ca_file`.
    case verify
    /// Accept any client certificate, or none, and pass what came to the target in headers.
    case passthrough
}

/// `tls.client_auth:` of an https listener.
public struct ClientAuthConfig: Sendable, Equatable {
    public var mode: ClientAuthMode
    /// Absolute path of the CA bundle client certificates must chain to; always set for
    /// `verify`, optional for `passthrough` (then only used to ask for certificates by CA name).
    public var caFile: String?

    public init(mode: ClientAuthMode, caFile: String? = nil) {
        self.mode = mode
        self.caFile = caFile
    }
}

/// `target_groups[i].tls` of an `https` or `tls` group: how Sluice speaks TLS to the targets.
/// Such groups always have one after loading (the defaults when the key is absent). https
/// health checks use it too, also on groups of other protocols (where the defaults apply).
public struct GroupTLSConfig: Sendable, Equatable {
    /// Verify each target's certificate chain and name (default true).
    public var verify: Bool
    /// Absolute path of the CA bundle to verify against; `nil` = the system's default trust
    /// store. Relative paths resolve as for `ListenerTLSConfig`.
    public var caFile: String?
    /// SNI sent to targets and the name their certificate must carry (`server_name`); `nil` =
    /// no SNI, and with `verify` the target's address is checked instead.
    public var serverName: String?

    public init(verify: Bool = true, caFile: String? = nil, serverName: String? = nil) {
        self.verify = verify
        self.caFile = caFile
        self.serverName = serverName
    }
}

/// `target_groups[i].protocol_version:` of an http or https group (SPEC §3, Connections, as
/// ALB's target group protocol versions).
public enum ProtocolVersion: String, Sendable, Equatable, CaseIterable {
    /// Requests go to targets as HTTP/1.1 (the default).
    case http1
    /// HTTP/2: h2c to http targets, h2 over TLS (ALPN) to https targets.
    case http2
    /// `http2` that passes trailers end to end, answers Sluice's errors with a gRPC status and
    /// health-checks with `grpc.health.v1.Health/Check`.
    case grpc
}
