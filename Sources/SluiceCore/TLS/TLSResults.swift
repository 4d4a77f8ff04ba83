// What a TLS connection reports: handshake steps, failure classes, ALPN, the peer certificate.

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
