import SluiceCore
import SluiceHTTP

/// TLS handshakes on the data path, for both layers: a `tls`/`https` listener's client
/// handshake (before the session reads payload) and the handshake to `tls`/`https` targets
/// (part of connecting). Nonblocking: a handshake that waits returns and resumes on the
/// socket's next event; timeouts bound it (the listener's `handshake_timeout`, the connect
/// timeout for targets).
extension Worker {
    enum HandshakeProgress { case done, waiting, failed }

    /// One step of a server-side handshake on a client socket; counts the outcome in the
    /// listener's `sluice_tls_handshakes_total`.
    func stepClientHandshake(_ s: TLSStream, io: inout Readiness, statsId: Int) -> HandshakeProgress {
        switch s.handshake() {
        case .done:
            stats.tlsHandshake(listener: statsId, result: s.resumed ? 1 : 0)
            return .done
        case .wantsRead:
            io.readable = false
            return .waiting
        case .wantsWrite:
            io.writable = false
            io.readWaitsForWritable = true
            return .waiting
        case .failed(let cause):
            countHandshakeFailure(cause, statsId: statsId)
            return .failed
        }
    }

    func countHandshakeFailure(_ cause: TLSFailure, statsId: Int) {
        let i = TLSFailure.allCases.firstIndex(of: cause) ?? (TLSFailure.allCases.count - 1)
        stats.tlsHandshake(listener: statsId, result: 2 + i)
    }

    /// One step of a client-side handshake on a target socket.
    func stepTargetHandshake(_ s: TLSStream, io: inout Readiness) -> HandshakeProgress {
        switch s.handshake() {
        case .done: return .done
        case .wantsRead:
            io.readable = false
            return .waiting
        case .wantsWrite:
            io.writable = false
            io.readWaitsForWritable = true
            return .waiting
        case .failed: return .failed
        }
    }

    /// The mutual-TLS header lines for a verified (or passed-through) client certificate
    /// (SPEC §3): subject (RFC 4514), serial (upper-case hex) and the leaf PEM, percent-encoded.
    /// Empty when the client sent none. Once per connection, after the handshake.
    static func clientCertHeaders(_ s: TLSStream) -> [UInt8] {
        guard let cert = s.peerCertificate() else { return [] }
        var out: [UInt8] = []
        func line(_ name: String, _ value: String) {
            out += Array(name.utf8)
            out += Array(": ".utf8)
            // A subject can hold any byte; CR, LF and NUL would split the head: spaces instead.
            for b in value.utf8 { out.append(b == 0x0D || b == 0x0A || b == 0 ? 0x20 : b) }
            out += [0x0D, 0x0A]
        }
        line("X-Sluice-Client-Cert-Subject", cert.subject)
        line("X-Sluice-Client-Cert-Serial", cert.serialHex)
        line("X-Sluice-Client-Cert", cert.pemPercentEncoded)
        return out
    }
}
