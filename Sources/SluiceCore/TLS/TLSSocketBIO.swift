internal import COpenSSL

/// The socket BIO under every `TLSStream` (`csluice_tlsbio_*` in the COpenSSL shim): OpenSSL's
/// socket reads and writes, plus what a read learned about the socket. On a TCP socket (TCP_INQ
/// on) a read that leaves nothing queued and no FIN pending sets `emptied`; `TLSStream.read`
/// then answers `.drained` when OpenSSL holds nothing more, instead of reading once more for
/// EAGAIN. Contexts turn on read-ahead, so one read fetches every record the socket holds.
enum TLSSocketBIO {
    /// The BIO method, made once per process (nil only when OpenSSL could not allocate it).
    /// `@unchecked Sendable`: the `BIO_METHOD` is never changed after it is made, and OpenSSL
    /// allows `BIO_new` with one method from any thread.
    private struct Method: @unchecked Sendable {
        let raw: OpaquePointer?
    }

    private static let method = Method(raw: csluice_tlsbio_method_new())

    /// Attaches a socket BIO over `fd` to `ssl` (both directions) and returns its state, owned
    /// by the `SSL` (freed with it). Falls back to OpenSSL's socket BIO (state nil: never
    /// `.drained`) when the method or the BIO cannot be made. False only when neither can.
    static func attach(_ ssl: OpaquePointer, fd: Int32) -> (ok: Bool, state: UnsafeMutablePointer<csluice_tlsbio>?) {
        if let m = method.raw, let bio = csluice_tlsbio_new(m, fd) {
            SSL_set_bio(ssl, bio, bio)  // takes the one reference
            return (true, csluice_tlsbio_state(bio))
        }
        return (SSL_set_fd(ssl, fd) == 1, nil)
    }
}
