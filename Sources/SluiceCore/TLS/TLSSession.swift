internal import COpenSSL

/// A TLS session (its ticket and secrets) from a finished client connection, to resume the
/// next connection to the same server with `TLSClientContext.makeStream(fd:serverName:session:)`.
///
/// `@unchecked Sendable`: an `SSL_SESSION` taken with `SSL_get1_session` after a handshake is
/// not modified again, its reference count is atomic, and OpenSSL allows `SSL_set_session` of
/// one session on connections in several threads.
public final class TLSSession: @unchecked Sendable {
    let raw: OpaquePointer

    /// Takes over one reference to `raw`.
    init(_ raw: OpaquePointer) {
        self.raw = raw
    }

    deinit {
        SSL_SESSION_free(raw)
    }
}
