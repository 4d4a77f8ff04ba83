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

/// Where a handshake is: done, waiting for the socket, or failed.
public enum TLSHandshakeStep: Sendable, Equatable {
    case done
    /// Call `handshake()` again when the descriptor is readable.
    case wantsRead
    /// Call `handshake()` again when the descriptor is writable.
    case wantsWrite
    case failed(TLSFailure)
}

/// Why a handshake failed, coarse enough for a metric label (the raw values are the labels).
/// `timeout` is never produced by `TLSStream`: the caller's handshake timer reports it.
public enum TLSFailure: String, Sendable, CaseIterable {
    case timeout
    /// No version both sides accept (a TLS 1.2-only client at a 1.3-only listener).
    case protocolVersion = "protocol_version"
    /// No cipher suite, group or signature algorithm in common.
    case noSharedCipher = "no_shared_cipher"
    /// Client certificates are required and the client sent none.
    case noClientCertificate = "no_client_certificate"
    /// The peer rejected our certificate (an alert: bad or unknown certificate, unknown CA…).
    case badCertificate = "bad_certificate"
    /// The peer's certificate did not verify (chain, expiry or host name).
    case verifyFailed = "verify_failed"
    /// The peer closed the connection during the handshake.
    case peerClosed = "peer_closed"
    /// The bytes are not TLS (plain HTTP at a TLS port, or a plain-text server).
    case notTLS = "not_tls"
    /// Anything else; `TLSStream.failureDetail` has OpenSSL's text.
    case error
}

/// The protocol ALPN settled on.
public enum TLSALPN: Sendable, Equatable {
    case none, http11, h2
}

/// The peer's leaf certificate, in the forms headers and logs want.
public struct TLSPeerCertificate: Sendable, Equatable {
    /// RFC 4514 distinguished name as OpenSSL prints it (`XN_FLAG_RFC2253`), e.g. `CN=client-1,O=Sluice Tests`.
    public var subject: String
    /// The serial number in upper-case hex, no separators.
    public var serialHex: String
    /// The leaf in PEM, RFC 3986 percent-encoded (unreserved characters kept), for a request header.
    public var pemPercentEncoded: String

    public init(subject: String, serialHex: String, pemPercentEncoded: String) {
        self.subject = subject
        self.serialHex = serialHex
        self.pemPercentEncoded = pemPercentEncoded
    }
}
