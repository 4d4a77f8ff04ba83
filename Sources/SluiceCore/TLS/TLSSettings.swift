/// A TLS protocol version (the data plane speaks 1.2 and 1.3 only).
public enum TLSVersion: Sendable, Equatable {
    case v1_2, v1_3
}

/// A certificate chain file (leaf first, intermediates after it) and its private key, both PEM.
public struct TLSCertificateFiles: Sendable, Equatable {
    public var cert: String
    public var key: String

    public init(cert: String, key: String) {
        self.cert = cert
        self.key = key
    }
}

/// What a listener does with client certificates.
public enum TLSClientAuthMode: Sendable, Equatable {
    /// The client must present a certificate that verifies against the CA file.
    case verify
    /// A certificate is requested but any (or none) is accepted; it is passed on, not judged.
    case passthrough
}

/// Everything a TLS listener needs: compiled once into a `TLSServerContext`.
public struct TLSServerSettings: Sendable {
    /// The first is the default; the others are chosen by SNI (first whose certificate matches the name).
    public var certificates: [TLSCertificateFiles]
    /// Lowest version accepted; the highest is always 1.3.
    public var minVersion: TLSVersion
    /// ALPN protocols in the server's preference order, e.g. `["h2", "http/1.1"]`; empty = no ALPN.
    public var alpn: [String]
    /// Client certificates: nil = not requested. `caFile` is required for `.verify` (and is also
    /// sent as the list of acceptable CAs); optional for `.passthrough`.
    public var clientAuth: (mode: TLSClientAuthMode, caFile: String?)?
    /// The session ticket keys: the process-wide set unless a test brings its own.
    public var ticketKeys: TLSTicketKeys

    public init(certificates: [TLSCertificateFiles], minVersion: TLSVersion = .v1_2, alpn: [String] = [],
                clientAuth: (mode: TLSClientAuthMode, caFile: String?)? = nil,
                ticketKeys: TLSTicketKeys = .shared) {
        self.certificates = certificates
        self.minVersion = minVersion
        self.alpn = alpn
        self.clientAuth = clientAuth
        self.ticketKeys = ticketKeys
    }
}

/// A TLS configuration that cannot be used: which file (if one is to blame) and why, in words
/// for the operator, e.g. `/etc/sluice/api.pem: cannot read certificate: no start line`.
public struct TLSSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String?
    public var message: String

    public init(file: String?, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String {
        guard let file else { return message }
        return "\(file): \(message)"
    }
}
