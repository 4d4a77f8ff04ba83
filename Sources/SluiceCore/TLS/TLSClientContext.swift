internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// TLS towards targets: one `SSL_CTX` for a pool of target connections, making one
/// `TLSStream` per connection.
///
/// `@unchecked Sendable`: the `SSL_CTX` is configured in `init` and never changed afterwards;
/// OpenSSL allows `SSL_new` on it from any thread.
public final class TLSClientContext: @unchecked Sendable {
    private let ctx: OpaquePointer
    private let verify: Bool

    /// `verify`: check the target's certificate chain against `caFile` (or the system's
    /// default CA paths when nil) and its name (see `makeStream`). `alpn`: protocols to offer,
    /// in order. `certificate`: a client certificate to present when asked. Versions 1.2–1.3
    /// unless narrowed.
    public init(verify: Bool, caFile: String?, alpn: [String], certificate: TLSCertificateFiles? = nil,
                minVersion: TLSVersion = .v1_2, maxVersion: TLSVersion = .v1_3) throws(TLSSetupError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSSetupError(file: nil, message: "cannot make an SSL context: \(TLSErrorQueue.takeReason())")
        }
        do throws(TLSSetupError) {
            try Self.configure(ctx, verify: verify, caFile: caFile, alpn: alpn, certificate: certificate,
                               minVersion: minVersion, maxVersion: maxVersion)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        self.ctx = ctx
        self.verify = verify
    }

    deinit {
        SSL_CTX_free(ctx)
    }

    /// A client-side stream on a connected (or connecting) nonblocking socket, in the connect
    /// state. `serverName` is sent as SNI (unless it is an IP address) and, when verifying, is
    /// the name (or address) the certificate must match. Nil only when OpenSSL cannot allocate.
    public func makeStream(fd: Int32, serverName: String?) -> TLSStream? {
        makeStream(fd: fd, serverName: serverName, session: nil)
    }

    /// As `makeStream(fd:serverName:)`, offering `session` for resumption.
    public func makeStream(fd: Int32, serverName: String?, session: TLSSession?) -> TLSStream? {
        guard let ssl = SSL_new(ctx) else { return nil }
        let bio = TLSSocketBIO.attach(ssl, fd: fd)
        guard bio.ok, Self.setName(ssl, serverName, verify: verify),
              session.map({ SSL_set_session(ssl, $0.raw) == 1 }) ?? true
        else {
            ERR_clear_error()
            SSL_free(ssl)
            return nil
        }
        SSL_set_connect_state(ssl)
        return TLSStream(ssl: ssl, bio: bio.state, owner: self, isServer: false)
    }

    private static func setName(_ ssl: OpaquePointer, _ name: String?, verify: Bool) -> Bool {
        guard let name, !name.isEmpty else { return true }
        if isIPAddress(name) {
            // No SNI for addresses (RFC 6066); the certificate must carry the address.
            return !verify || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
        }
        guard csluice_SSL_set_tlsext_host_name(ssl, name) == 1 else { return false }
        return !verify || SSL_set1_host(ssl, name) == 1
    }

    private static func isIPAddress(_ name: String) -> Bool {
        var buffer = in6_addr()
        return inet_pton(AF_INET, name, &buffer) == 1 || inet_pton(AF_INET6, name, &buffer) == 1
    }

    private static func configure(_ ctx: OpaquePointer, verify: Bool, caFile: String?, alpn: [String],
                                  certificate: TLSCertificateFiles?, minVersion: TLSVersion,
                                  maxVersion: TLSVersion) throws(TLSSetupError) {
        let low = minVersion == .v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION
        let high = maxVersion == .v1_2 ? TLS1_2_VERSION : TLS1_3_VERSION
        guard low <= high else { throw TLSSetupError(file: nil, message: "the minimum TLS version is above the maximum") }
        guard csluice_SSL_CTX_set_min_proto_version(ctx, low) == 1,
              csluice_SSL_CTX_set_max_proto_version(ctx, high) == 1 else {
            throw TLSSetupError(file: nil, message: "cannot configure TLS: \(TLSErrorQueue.takeReason())")
        }
        _ = SSL_CTX_set_options(ctx, csluice_SSL_OP_NO_RENEGOTIATION() | csluice_SSL_OP_NO_COMPRESSION())
        _ = csluice_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                                              | SSL_MODE_RELEASE_BUFFERS))
        // One socket read fetches every record the socket holds (see TLSSocketBIO).
        _ = csluice_SSL_CTX_set_read_ahead(ctx, 1)
        // Sessions are kept by the caller (TLSStream.session()), not in OpenSSL's cache.
        _ = csluice_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        if verify {
            if let caFile {
                guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                    throw TLSSetupError(file: caFile, message: "cannot read CA file: \(TLSErrorQueue.takeReason())")
                }
            } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                throw TLSSetupError(file: nil, message: "cannot load the system CAs: \(TLSErrorQueue.takeReason())")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if !alpn.isEmpty {
            let wire = try TLSALPNWire.wire(alpn)
            // SSL_CTX_set_alpn_protos returns 0 on success.
            guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(clamping: wire.count)) == 0 else {
                throw TLSSetupError(file: nil, message: "cannot set ALPN protocols: \(TLSErrorQueue.takeReason())")
            }
        }
        if let certificate {
            guard SSL_CTX_use_certificate_chain_file(ctx, certificate.cert) == 1 else {
                throw TLSSetupError(file: certificate.cert,
                                    message: "cannot read certificate: \(TLSErrorQueue.takeReason())")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, certificate.key, SSL_FILETYPE_PEM) == 1,
                  SSL_CTX_check_private_key(ctx) == 1 else {
                let mismatch = TLSErrorQueue.firstIsKeyMismatch()
                let reason = TLSErrorQueue.takeReason()
                throw TLSSetupError(file: certificate.key, message: mismatch || reason == "unknown error"
                                    ? "private key does not match certificate" : "cannot read private key: \(reason)")
            }
        }
    }
}
