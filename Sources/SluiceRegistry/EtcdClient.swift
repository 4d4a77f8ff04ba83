internal import SluiceCore

/// A client of etcd v3 through its JSON gateway (`/v3/...`) over HTTP/1.1 with the project's
/// own codec and nonblocking sockets. No gRPC.
///
/// Calls are synchronous and meant for control-plane threads: each is bounded by
/// `requestTimeout` (a connect by `dialTimeout`), never by nothing, and never runs on a
/// data-plane worker. Any number of threads may call at once; idle keep-alive connections are
/// shared among them. A watch runs on a thread of its own (`watch`).
public final class EtcdClient: Sendable {
    let transport: EtcdTransport
    let requestTimeoutNanos: UInt64
    /// A watch stream with nothing on it for this long is re-established (etcd sends a progress
    /// notification every 10 minutes by default).
    let watchIdleNanos: UInt64

    /// `endpoints` are `http://HOST:PORT` or `https://HOST:PORT` URLs (IP literals or
    /// `localhost`); `tls` applies to the `https://` ones (default: verify against the system's
    /// CAs). Throws `.unavailable` naming a bad endpoint or unusable TLS files.
    public init(endpoints: [String], tls: EtcdTLS? = nil, dialTimeout: Duration = .seconds(2),
                requestTimeout: Duration = .seconds(5), watchIdleTimeout: Duration = .seconds(15 * 60)) throws(EtcdError) {
        guard !endpoints.isEmpty else { throw .unavailable("no etcd endpoint configured") }
        var parsed: [EtcdEndpoint] = []
        for e in endpoints { parsed.append(try EtcdEndpoint(e)) }
        var context: TLSClientContext?
        if parsed.contains(where: \.tls) {
            let settings = tls ?? EtcdTLS()
            var certificate: TLSCertificateFiles?
            switch (settings.certificateFile, settings.keyFile) {
            case (let cert?, let key?): certificate = TLSCertificateFiles(cert: cert, key: key)
            case (nil, nil): certificate = nil
            default: throw .unavailable("TLS: a client certificate needs both its certificate and key files")
            }
            do {
                context = try TLSClientContext(verify: settings.verify, caFile: settings.caFile, alpn: ["http/1.1"],
                                               certificate: certificate)
            } catch {
                throw .unavailable("TLS: \(error)")
            }
        }
        transport = EtcdTransport(endpoints: parsed, dialTimeoutNanos: Self.nanos(dialTimeout), tls: context)
        requestTimeoutNanos = Self.nanos(requestTimeout)
        watchIdleNanos = Self.nanos(watchIdleTimeout)
    }

    /// A duration as nanoseconds, at least 1 ms, saturating.
    static func nanos(_ d: Duration) -> UInt64 {
        let (seconds, attoseconds) = d.components
        guard seconds >= 0 else { return 1_000_000 }
        let (whole, overflow) = UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max / 2 }
        return max(whole &+ UInt64(clamping: attoseconds / 1_000_000_000), 1_000_000)
    }

    private func call(_ path: String, _ body: [UInt8]) throws(EtcdError) -> EtcdJSON.Object {
        let (status, answer) = try transport.call(path, body, timeoutNanos: requestTimeoutNanos)
        return try EtcdWire.answer(status: status, body: answer)
    }

    /// The key `key`, or (`prefix`) every key starting with it, and the store's revision.
    public func range(key: String, prefix: Bool = false) throws(EtcdError) -> EtcdRange {
        try EtcdWire.range(try call(EtcdWire.rangePath, EtcdWire.range(key: key, prefix: prefix)))
    }

    /// Sets `key` (bound to `lease` if given); returns the revision of the write.
    @discardableResult
    public func put(key: String, value: [UInt8], lease: Int64? = nil) throws(EtcdError) -> Int64 {
        try EtcdWire.revision(try call(EtcdWire.putPath, EtcdWire.put(key: key, value: value, lease: lease)))
    }

    /// Deletes `key` (or every key under it); returns how many were deleted and the revision.
    @discardableResult
    public func delete(key: String, prefix: Bool = false) throws(EtcdError) -> (deleted: Int64, revision: Int64) {
        try EtcdWire.deleted(try call(EtcdWire.deletePath, EtcdWire.delete(key: key, prefix: prefix)))
    }

    /// Runs a transaction (see `EtcdTxn`).
    public func txn(_ t: EtcdTxn) throws(EtcdError) -> EtcdTxnResult {
        try EtcdWire.txn(try call(EtcdWire.txnPath, EtcdWire.txn(t)))
    }

    /// Grants a lease of `ttl` seconds (etcd may raise a very short TTL to its minimum);
    /// returns its id.
    public func grantLease(ttl: Int64) throws(EtcdError) -> Int64 {
        try EtcdWire.grant(try call(EtcdWire.grantPath, EtcdWire.grant(ttl: ttl))).id
    }

    /// Renews `lease` once; returns the TTL it has again, 0 when it has already expired (its
    /// keys are gone: grant a new one).
    public func keepAlive(lease: Int64) throws(EtcdError) -> Int64 {
        let (status, answer) = try transport.call(EtcdWire.keepAlivePath, EtcdWire.lease(lease), timeoutNanos: requestTimeoutNanos)
        return try EtcdWire.keepAlive(status: status, body: answer)
    }

    /// Revokes `lease`, deleting every key bound to it. An unknown lease is `.server(code: 5, ...)`.
    public func revokeLease(_ lease: Int64) throws(EtcdError) {
        _ = try call(EtcdWire.revokePath, EtcdWire.lease(lease))
    }

    /// Compacts the history up to `revision` (physically). Watches resuming from before it get
    /// `.compacted`.
    public func compact(revision: Int64) throws(EtcdError) {
        _ = try call(EtcdWire.compactPath, EtcdWire.compact(revision: revision))
    }

    /// Watches every key under `prefix` from `startRevision` (0: changes from now on), calling
    /// `onEvent` on the watch's own thread, in revision order. The watch reconnects by itself and
    /// resumes after the last revision it delivered; it ends after `.compacted` or `cancel()`.
    public func watch(prefix: String, startRevision: Int64,
                      onEvent: @escaping @Sendable (EtcdWatchEvent) -> Void) throws(EtcdError) -> EtcdWatch {
        try EtcdWatch(client: self, prefix: prefix, startRevision: startRevision, onEvent: onEvent)
    }
}
