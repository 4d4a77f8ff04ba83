internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// A TLS listener's compiled settings: one `SSL_CTX` per certificate, all configured alike, the
/// first the default and the others chosen by SNI. Makes one `TLSStream` per accepted connection.
///
/// `@unchecked Sendable`: the `SSL_CTX`s are configured in `init` and never changed afterwards
/// (OpenSSL allows `SSL_new` on a shared, unchanging `SSL_CTX` from any thread); the Swift
/// properties are `let`s. The callbacks find this object through each `SSL_CTX`'s app data
/// (unretained): every `TLSStream` made here keeps the context alive while its `SSL` exists.
public final class TLSServerContext: @unchecked Sendable {
    /// TLS 1.2 suites, forward secret AEAD only (TLS 1.3 keeps OpenSSL's default suites).
    static let cipherList = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let groups = "X25519:P-256:P-384"

    /// One per certificate, in the settings' order; [0] is the default.
    private let contexts: [OpaquePointer]
    /// Each context's leaf certificate (owned by its context), for SNI matching.
    private let leaves: [OpaquePointer]
    /// ALPN protocols in preference order, as bytes.
    private let alpnProtocols: [[UInt8]]
    let ticketKeys: TLSTicketKeys

    public init(_ settings: TLSServerSettings) throws(TLSSetupError) {
        guard !settings.certificates.isEmpty else {
            throw TLSSetupError(file: nil, message: "a TLS listener needs at least one certificate")
        }
        alpnProtocols = try TLSALPNWire.protocols(settings.alpn)
        ticketKeys = settings.ticketKeys
        let sessionContext = Self.sessionIDContext(settings)
        var made: [OpaquePointer] = []
        var leaves: [OpaquePointer] = []
        do throws(TLSSetupError) {
            for files in settings.certificates {
                let ctx = try Self.makeContext(files, settings, sessionContext: sessionContext)
                made.append(ctx)
                guard let leaf = SSL_CTX_get0_certificate(ctx) else {
                    throw TLSSetupError(file: files.cert, message: "no certificate in the file")
                }
                leaves.append(leaf)
            }
        } catch {
            made.forEach { SSL_CTX_free($0) }
            throw error
        }
        contexts = made
        self.leaves = leaves
        let me = Unmanaged.passUnretained(self).toOpaque()
        for ctx in contexts { _ = SSL_CTX_set_ex_data(ctx, 0, me) }
    }

    deinit {
        contexts.forEach { SSL_CTX_free($0) }
    }

    /// A server-side stream for an accepted, nonblocking socket (in the accept state; the
    /// caller drives `handshake()`). Nil only when OpenSSL cannot allocate. The stream does not
    /// own `fd`: the caller closes it after the stream is gone or shut down.
    public func makeStream(fd: Int32) -> TLSStream? {
        guard let ssl = SSL_new(contexts[0]) else { return nil }
        let bio = TLSSocketBIO.attach(ssl, fd: fd)
        guard bio.ok else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        return TLSStream(ssl: ssl, bio: bio.state, owner: self, isServer: true)
    }

    // MARK: - Building a context

    private static func makeContext(_ files: TLSCertificateFiles, _ settings: TLSServerSettings,
                                    sessionContext: [UInt8]) throws(TLSSetupError) -> OpaquePointer {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSSetupError(file: nil, message: "cannot make an SSL context: \(TLSErrorQueue.takeReason())")
        }
        do throws(TLSSetupError) {
            try configure(ctx, settings, sessionContext: sessionContext)
            try loadCertificate(ctx, files)
            try configureClientAuth(ctx, settings)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        return ctx
    }

    /// What every per-certificate context shares: versions, suites, groups, options, modes,
    /// stateless tickets and the callbacks.
    private static func configure(_ ctx: OpaquePointer, _ settings: TLSServerSettings,
                                  sessionContext: [UInt8]) throws(TLSSetupError) {
        let minVersion = settings.minVersion == .v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard csluice_SSL_CTX_set_min_proto_version(ctx, minVersion) == 1,
              csluice_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
              SSL_CTX_set_cipher_list(ctx, cipherList) == 1,
              csluice_SSL_CTX_set1_groups_list(ctx, groups) == 1,
              sessionContext.withUnsafeBufferPointer({
                  SSL_CTX_set_session_id_context(ctx, $0.baseAddress, UInt32(clamping: $0.count))
              }) == 1
        else {
            throw TLSSetupError(file: nil, message: "cannot configure TLS: \(TLSErrorQueue.takeReason())")
        }
        _ = SSL_CTX_set_options(ctx, csluice_SSL_OP_NO_RENEGOTIATION() | csluice_SSL_OP_CIPHER_SERVER_PREFERENCE()
                                    | csluice_SSL_OP_NO_COMPRESSION())
        _ = csluice_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                                              | SSL_MODE_RELEASE_BUFFERS))
        // Each socket read fetches all the socket holds (up to a record buffer), not a header and
        // then a body: fewer reads, and TLSStream can tell when the socket is drained.
        _ = csluice_SSL_CTX_set_read_ahead(ctx, 1)
        // Stateless tickets only: no server-side cache; the keys are process-wide (TLSTicketKeys).
        _ = csluice_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx) { ssl, name, iv, cipher, mac, enc in
            guard let owner = TLSServerContext.owner(of: ssl), let name, let iv, let cipher, let mac else { return -1 }
            return owner.ticketKeys.ticketCallback(name: name, iv: iv, cipher: cipher, mac: mac, encrypt: enc == 1)
        }
        if settings.certificates.count > 1 {
            _ = csluice_SSL_CTX_set_tlsext_servername_callback(ctx) { ssl, _, _ in
                if let ssl, let owner = TLSServerContext.owner(of: ssl) { owner.selectCertificate(ssl) }
                return SSL_TLSEXT_ERR_OK
            }
        }
        if !settings.alpn.isEmpty {
            SSL_CTX_set_alpn_select_cb(ctx, { ssl, out, outLength, input, inputLength, _ in
                guard let owner = TLSServerContext.owner(of: ssl), let out, let outLength, let input else {
                    return SSL_TLSEXT_ERR_NOACK
                }
                return owner.selectALPN(out, outLength, UnsafeBufferPointer(start: input, count: Int(truncatingIfNeeded: inputLength)))  // UInt32 → Int widens
            }, nil)
        }
    }

    private static func loadCertificate(_ ctx: OpaquePointer, _ files: TLSCertificateFiles) throws(TLSSetupError) {
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(ctx, files.cert) == 1 else {
            throw TLSSetupError(file: files.cert, message: "cannot read certificate: \(TLSErrorQueue.takeReason())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, files.key, SSL_FILETYPE_PEM) == 1 else {
            // A key of the certificate's type but another pair fails here (X509 "key values mismatch").
            if TLSErrorQueue.firstIsKeyMismatch() {
                ERR_clear_error()
                throw TLSSetupError(file: files.key, message: "private key does not match certificate")
            }
            throw TLSSetupError(file: files.key, message: "cannot read private key: \(TLSErrorQueue.takeReason())")
        }
        // A key of another type (an RSA key for an ECDSA certificate) loads and fails here.
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            ERR_clear_error()
            throw TLSSetupError(file: files.key, message: "private key does not match certificate")
        }
    }

    private static func configureClientAuth(_ ctx: OpaquePointer, _ settings: TLSServerSettings) throws(TLSSetupError) {
        guard let auth = settings.clientAuth else { return }
        if let caFile = auth.caFile {
            ERR_clear_error()
            // Under passthrough too, so the stream can say whether the certificate chains to the CA.
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw TLSSetupError(file: caFile, message: "cannot read CA file: \(TLSErrorQueue.takeReason())")
            }
            // The names of the acceptable CAs, sent in the certificate request.
            guard let names = SSL_load_client_CA_file(caFile) else {
                throw TLSSetupError(file: caFile, message: "cannot read CA file: \(TLSErrorQueue.takeReason())")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
        }
        switch auth.mode {
        case .verify:
            guard auth.caFile != nil else {
                throw TLSSetupError(file: nil, message: "verifying client certificates needs a CA file")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        case .passthrough:
            // Ask for a certificate, accept whatever comes (or nothing): the application judges it.
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER) { _, _ in 1 }
        }
    }

    /// A ticket made under one client-certificate policy (or for one set of certificates) must not
    /// resume under another, so the session ID context is a digest of both. Deterministic, so
    /// every worker and every reload with the same settings resumes the others' tickets.
    private static func sessionIDContext(_ settings: TLSServerSettings) -> [UInt8] {
        var text = "sluice"
        if let auth = settings.clientAuth {
            text += auth.mode == .verify ? "|verify|" : "|passthrough|"
            text += auth.caFile ?? ""
        }
        for c in settings.certificates { text += "|" + c.cert }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = text.utf8CString.withUnsafeBytes { bytes in
            EVP_Digest(bytes.baseAddress, max(0, bytes.count - 1), &digest, &length, EVP_sha256(), nil)
        }
        guard ok == 1 else { return Array("sluice".utf8) }
        return Array(digest.prefix(min(Int(truncatingIfNeeded: length), Int(SSL_MAX_SID_CTX_LENGTH))))
    }

    // MARK: - Callbacks

    /// The context behind an `SSL`'s current `SSL_CTX` (its app data, set in `init`).
    static func owner(of ssl: OpaquePointer?) -> TLSServerContext? {
        guard let ssl, let ctx = SSL_get_SSL_CTX(ssl), let raw = SSL_CTX_get_ex_data(ctx, 0) else { return nil }
        return Unmanaged<TLSServerContext>.fromOpaque(raw).takeUnretainedValue()
    }

    /// SNI: switch to the first certificate that matches the name (wildcards as X509_check_host
    /// allows); no name or no match keeps the default.
    private func selectCertificate(_ ssl: OpaquePointer) {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return }
        let length = strlen(name)
        for (i, leaf) in leaves.enumerated() where X509_check_host(leaf, name, length, 0, nil) == 1 {
            if i > 0 { _ = SSL_set_SSL_CTX(ssl, contexts[i]) }
            return
        }
    }

    /// ALPN in the server's order: the first of ours the client offers. No overlap is not an
    /// error (NOACK): the connection goes on without ALPN, as HTTP/1.1.
    private func selectALPN(_ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>, _ outLength: UnsafeMutablePointer<UInt8>,
                            _ offered: UnsafeBufferPointer<UInt8>) -> Int32 {
        for wanted in alpnProtocols {
            var i = 0
            while i < offered.count {
                let length = Int(truncatingIfNeeded: offered[i])
                let start = i + 1
                guard length > 0, start + length <= offered.count else { break }
                if length == wanted.count, UnsafeBufferPointer(rebasing: offered[start..<start + length]).elementsEqual(wanted),
                   let base = offered.baseAddress {
                    out.pointee = base + start
                    outLength.pointee = UInt8(truncatingIfNeeded: length)
                    return SSL_TLSEXT_ERR_OK
                }
                i = start + length
            }
        }
        return SSL_TLSEXT_ERR_NOACK
    }
}
