internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// One TLS connection over a nonblocking socket: the handshake, then reads and writes.
///
/// Owns its `SSL` (freed in `deinit`), not the descriptor: the caller closes the socket after
/// dropping (or shutting down) the stream. Keeps its context alive, since the context's
/// callbacks run on this `SSL`. Bound to the worker that accepted or opened the connection.
///
/// Every call first empties the thread's OpenSSL error queue, so an error left by another
/// connection on this thread never decides this one's result.
///
/// OpenSSL writes to the socket with `write(2)` (alerts too, e.g. after an unexpected EOF), so
/// the process must ignore `SIGPIPE`, as sluiced does.
public final class TLSStream {
    private let ssl: OpaquePointer
    /// The state of the socket BIO (`TLSSocketBIO`), owned by `ssl`; nil on OpenSSL's own socket
    /// BIO (the fallback), which never proves the socket drained.
    private let bio: UnsafeMutablePointer<csluice_tlsbio>?
    /// The `TLSServerContext` or `TLSClientContext` that made the stream.
    private let owner: AnyObject
    /// Whether this is the accepting side.
    public let isServer: Bool
    /// A fatal error happened: OpenSSL forbids `SSL_shutdown` after one.
    private var fatal = false
    private var shutdownSent = false
    /// What the last failure was (`SSL_get_error` value, oldest queued error, errno), for `failureDetail`.
    private var failedWith: (sslError: Int32, code: UInt, errno: Int32)?
    /// What a read found after the bytes it returned (the end of input, an error): the next
    /// read's answer.
    private var deferred: TransportResult?

    init(ssl: OpaquePointer, bio: UnsafeMutablePointer<csluice_tlsbio>?, owner: AnyObject, isServer: Bool) {
        self.ssl = ssl
        self.bio = bio
        self.owner = owner
        self.isServer = isServer
    }

    deinit {
        SSL_free(ssl)
    }

    /// Advances the handshake: call it first on the new stream and again whenever the socket
    /// is ready in the direction it asked for, until `.done` or `.failed`.
    public func handshake() -> TLSHandshakeStep {
        ERR_clear_error()
        errno = 0
        bio?.pointee.emptied = 0
        let r = SSL_do_handshake(ssl)
        if r == 1 { return .done }
        let e = SSL_get_error(ssl, r)
        switch e {
        case SSL_ERROR_WANT_READ: return .wantsRead
        case SSL_ERROR_WANT_WRITE: return .wantsWrite
        default: return .failed(noteFailure(e))
        }
    }

    /// Reads decrypted bytes. `.drained(n)` when this call's socket read left the socket empty
    /// (no bytes and no FIN queued, as TCP_INQ tells) and OpenSSL holds nothing more that a new
    /// readable edge would not announce: no plaintext and no whole record, at most the start of
    /// one whose rest is still to come. Then the records that read fetched are all returned at
    /// once (as far as `count` allows). `.bytes(n)` when that is not proven (OpenSSL holds more,
    /// the bytes came from its buffer without a socket read, or the socket is not TCP): read on
    /// until `.wouldBlock`. `.wantsWrite` when OpenSSL must write first. `.closed` on
    /// close_notify or on an EOF without one (a truncation the proxy cannot tell from a normal
    /// end). `.failed` otherwise (`EPROTO` for a TLS error; `failureDetail` says which).
    public func read(into buffer: UnsafeMutableRawPointer, count: Int) -> TransportResult {
        guard count > 0 else { return .bytes(0) }
        if let result = deferred {
            deferred = nil
            return result
        }
        ERR_clear_error()
        errno = 0
        bio?.pointee.emptied = 0
        var n = 0
        guard SSL_read_ex(ssl, buffer, count, &n) == 1 else { return readFailure() }
        // Without a socket read that emptied the socket in this call, the caller reads on.
        guard let bio, bio.pointee.emptied != 0 else { return .bytes(n) }
        // The socket was empty after this call's read: every record OpenSSL holds came with it.
        // Take them now (no syscall: the BIO answers EAGAIN while `emptied` is set), so that the
        // answer can be `.drained`.
        var total = n
        while SSL_has_pending(ssl) != 0 {
            guard total < count else { return .bytes(total) }
            ERR_clear_error()
            errno = 0
            if SSL_read_ex(ssl, buffer + total, count - total, &n) == 1 {
                total += n
                continue
            }
            let result = readFailure()
            // Only the start of a record is left: its rest brings a new edge.
            if result == .wouldBlock { return .drained(total) }
            // The end of input, an error or a write first: reported on the next call.
            deferred = result
            return .bytes(total)
        }
        return .drained(total)
    }

    /// What a failed `SSL_read_ex` means (recording a failure).
    private func readFailure() -> TransportResult {
        let e = SSL_get_error(ssl, 0)
        switch e {
        case SSL_ERROR_WANT_READ:
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            return .wantsWrite
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let saved = errno
            _ = noteFailure(e, savedErrno: saved)
            return saved == 0 ? .closed : .failed(Errno(saved))
        case SSL_ERROR_SSL:
            let eof = TLSErrorQueue.failure(forReason: ERR_peek_error()) == .peerClosed
            _ = noteFailure(e)
            return eof ? .closed : .failed(Errno(EPROTO))
        default:
            _ = noteFailure(e)
            return .failed(Errno(EPROTO))
        }
    }

    /// Writes up to `count` bytes as TLS records. Partial writes are on: `.bytes(n)` may be less
    /// than `count` with room left in the socket, so write on until `.wouldBlock`. After
    /// `.wouldBlock` or `.wantsRead`, retry with the same bytes (the buffer may move).
    public func write(from buffer: UnsafeRawPointer, count: Int) -> TransportResult {
        guard count > 0 else { return .bytes(0) }
        ERR_clear_error()
        errno = 0
        bio?.pointee.emptied = 0
        var n = 0
        if SSL_write_ex(ssl, buffer, count, &n) == 1 { return .bytes(n) }
        let e = SSL_get_error(ssl, 0)
        switch e {
        case SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        case SSL_ERROR_WANT_READ:
            return .wantsRead
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let saved = errno
            _ = noteFailure(e, savedErrno: saved)
            return .failed(Errno(saved == 0 ? EPIPE : saved))
        default:
            _ = noteFailure(e)
            return .failed(Errno(EPROTO))
        }
    }

    /// Sends close_notify if the handshake finished and nothing failed; once, best effort: on
    /// a full socket it is dropped rather than waited for. Never blocks, never reads.
    public func shutdown() {
        guard !fatal, !shutdownSent, SSL_is_init_finished(ssl) == 1 else { return }
        shutdownSent = true
        ERR_clear_error()
        bio?.pointee.emptied = 0
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// Whether OpenSSL holds input already read from the socket (a record not yet returned,
    /// or part of one): no readiness event will announce it, so a reader that stopped early
    /// (its buffer full) must come back without one.
    public var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    /// The protocol ALPN chose (`.none` also when it chose one Sluice has no name for).
    public var alpn: TLSALPN {
        guard let p = alpnProtocol else { return .none }
        switch p {
        case "h2": return .h2
        case "http/1.1": return .http11
        default: return .none
        }
    }

    /// The protocol ALPN chose, as sent; nil when none.
    public var alpnProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(truncatingIfNeeded: length)), as: UTF8.self)
    }

    /// Whether the handshake resumed a session (a ticket) instead of a full key exchange.
    public var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The negotiated version as OpenSSL names it ("TLSv1.3").
    public var versionName: String {
        guard let name = SSL_get_version(ssl) else { return "" }
        return String(cString: name)
    }

    /// The name the client asked for with SNI (server side), nil when none.
    public var serverName: String? {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        return String(cString: name)
    }

    /// The peer's leaf certificate; nil when it sent none.
    public func peerCertificate() -> TLSPeerCertificate? {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return nil }
        return TLSPeerCertificate(x509: cert)
    }

    /// Whether the peer's certificate verified (client side with verification, or a server
    /// with `.verify`); a `.passthrough` server sees false for a certificate it cannot verify.
    public var peerVerified: Bool {
        SSL_get0_peer_certificate(ssl) != nil && SSL_get_verify_result(ssl) == Int(X509_V_OK)
    }

    /// The session to resume a later connection to the same server with (client side); nil
    /// when there is none yet. Under TLS 1.3 the tickets arrive after the handshake, with the
    /// first data read.
    public func session() -> TLSSession? {
        guard let s = SSL_get1_session(ssl) else { return nil }
        guard SSL_SESSION_is_resumable(s) == 1 else {
            SSL_SESSION_free(s)
            return nil
        }
        return TLSSession(s)
    }

    /// The last failure in words, for a rate-limited log line: OpenSSL's error line, the errno,
    /// and the certificate verification result when that failed. Empty when nothing failed.
    public var failureDetail: String {
        guard let f = failedWith else { return "" }
        var text: String
        if f.code != 0 {
            text = TLSErrorQueue.text(f.code)
        } else if f.errno != 0 {
            text = Errno(f.errno).description
        } else if f.sslError == SSL_ERROR_SYSCALL || f.sslError == SSL_ERROR_ZERO_RETURN {
            text = "connection closed by peer"
        } else {
            text = "TLS error \(f.sslError)"
        }
        let verify = SSL_get_verify_result(ssl)
        if verify != Int(X509_V_OK), let why = X509_verify_cert_error_string(verify) {
            text += " (certificate: \(String(cString: why)))"
        }
        return text
    }

    /// Records a failure and classifies it; empties the error queue.
    private func noteFailure(_ sslError: Int32, savedErrno: Int32? = nil) -> TLSFailure {
        let saved = savedErrno ?? errno
        var codes: [UInt] = []
        while codes.count < 8 {
            let code = ERR_get_error()
            if code == 0 { break }
            codes.append(code)
        }
        ERR_clear_error()
        fatal = sslError == SSL_ERROR_SSL || sslError == SSL_ERROR_SYSCALL
        failedWith = (sslError, codes.first ?? 0, saved)
        switch sslError {
        case SSL_ERROR_ZERO_RETURN:
            return .peerClosed
        case SSL_ERROR_SYSCALL where codes.isEmpty:
            // EOF (errno 0) or a reset: the peer went away.
            return saved == 0 || saved == ECONNRESET || saved == EPIPE ? .peerClosed : .error
        default:
            for code in codes {
                if let failure = TLSErrorQueue.failure(forReason: code) { return failure }
            }
            return .error
        }
    }
}

@available(*, unavailable)
extension TLSStream: Sendable {}
