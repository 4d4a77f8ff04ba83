import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// OpenSSL contexts for the Plan's TLS listeners and groups, built when a Plan is compiled.
///
/// A Plan is compiled for every registration, not only for reloads; loading certificates and
/// keys each time would cost milliseconds per registration. So contexts are cached by their
/// settings *and* the identity of the files behind them (device, inode, size, modification
/// time): a reload after a certificate was replaced on disk builds a new context (and a bad
/// new file refuses the reload, the old context keeps serving), a registration reuses it.
/// Cold path only (control thread).
final class TLSContexts: Sendable {
    static let shared = TLSContexts()

    private let cache = Mutex<(servers: [String: TLSServerContext], clients: [String: TLSClientContext])>(([:], [:]))
    /// Entries kept; beyond it the cache starts over (contexts in use stay alive in their Plans).
    private static let limit = 64

    /// The server context of a `tls`/`https` listener.
    func server(_ t: ListenerTLSConfig, listener: String, index: Int) throws(Plan.CompileError) -> TLSServerContext {
        var files: [String] = []
        for c in t.certificates { files += [c.cert, c.key] }
        if let ca = t.clientAuth?.caFile { files.append(ca) }
        let key = "\(t)|\(TLSContexts.signature(files))"
        if let hit = cache.withLock({ $0.servers[key] }) { return hit }
        let settings = TLSServerSettings(
            certificates: t.certificates.map { TLSCertificateFiles(cert: $0.cert, key: $0.key) },
            minVersion: t.minVersion == .v1_3 ? .v1_3 : .v1_2,
            alpn: t.alpn,
            clientAuth: t.clientAuth.map { (mode: $0.mode == .verify ? TLSClientAuthMode.verify : .passthrough, caFile: $0.caFile) })
        let context: TLSServerContext
        do {
            context = try TLSServerContext(settings)
        } catch {
            throw Plan.CompileError(description: TLSContexts.describe(error, t, listener: listener, index: index))
        }
        cache.withLock {
            if $0.servers.count >= TLSContexts.limit { $0.servers.removeAll() }
            $0.servers[key] = context
        }
        return context
    }

    /// A listener's TLS setup error at the key that names the file (SPEC §2: file, line and
    /// column, and the key's path), e.g. `s.yaml:70:9: listeners[3].tls.certificates[0].cert
    /// (listener secure): /etc/sluice/a.pem: cannot read certificate: no start line`.
    static func describe(_ error: TLSSetupError, _ t: ListenerTLSConfig, listener: String, index: Int) -> String {
        let at = "listeners[\(index)].tls"
        if let file = error.file {
            for (j, c) in t.certificates.enumerated() where file == c.cert || file == c.key {
                return "\(c.location): \(at).certificates[\(j)].\(file == c.cert ? "cert" : "key") (listener \(listener)): \(error)"
            }
            if file == t.clientAuth?.caFile {
                return "\(t.location): \(at).client_auth.ca_file (listener \(listener)): \(error)"
            }
        }
        return "\(t.location): \(at) (listener \(listener)): \(error)"
    }

    /// The client context of an `https`/`tls` group (`alpn`: what to offer targets).
    func client(_ t: GroupTLSConfig, alpn: [String], group: String) throws(Plan.CompileError) -> TLSClientContext {
        let key = "\(t)|\(alpn)|\(TLSContexts.signature(t.caFile.map { [$0] } ?? []))"
        if let hit = cache.withLock({ $0.clients[key] }) { return hit }
        let context: TLSClientContext
        do {
            context = try TLSClientContext(verify: t.verify, caFile: t.caFile, alpn: alpn)
        } catch {
            throw Plan.CompileError(description: "target group \(group): tls: \(error)")
        }
        cache.withLock {
            if $0.clients.count >= TLSContexts.limit { $0.clients.removeAll() }
            $0.clients[key] = context
        }
        return context
    }

    /// Device, inode, size and modification time of each file ("?" when it cannot be read:
    /// the context build then reports the real error).
    static func signature(_ paths: [String]) -> String {
        var out = ""
        for p in paths {
            var st = stat()
            if stat(p, &st) == 0 {
                out += "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec);"
            } else {
                out += "?;"
            }
        }
        return out
    }
}
