/// A parsed request head: spans into the buffer given to `HTTPRequestParser.parse`, plus what
/// the proxy needs to decide (framing, keep-alive, upgrade, desync verdict).
///
/// The header table is reserved with `HTTPLimits.maxHeaders` capacity once and reused by
/// `HTTPRequestParser.reset()`. Do not keep a copy of a head across `reset()`: the array would
/// no longer be uniquely referenced, and `reset()` would then allocate a new one.
public struct HTTPRequestHead: Sendable {
    /// The method bytes.
    public var method: ByteRange
    /// The method, if a known one.
    public var methodKind: HTTPMethod
    /// The request-target as received (outer spaces trimmed).
    public var target: ByteRange
    /// The path: the target up to `?`. For absolute-form (`http://host/p?q`) the path part of
    /// it, which is empty for `http://host` (meaning `/`); `*` for `OPTIONS *`; empty for
    /// CONNECT's authority-form.
    public var path: ByteRange
    /// What follows `?` (without it); empty when there is none.
    public var query: ByteRange
    /// 1 for HTTP/1.1 (and the non-compliant 1.2 ... 1.9), 0 for HTTP/1.0.
    public var versionMinor: UInt8
    /// The header fields in order. Lines without a colon, with an empty name or with NUL/CR in
    /// the name are not in it (they are classified and never forwarded); an obs-fold extends the previous field's value.
    public var headers: [HTTPHeader]
    /// The authority: from an absolute-form or authority-form target, else the first Host
    /// header's value (port included); nil when there is none.
    public var host: ByteRange?
    /// The safe body framing: Transfer-Encoding wins over Content-Length; any
    /// Transfer-Encoding means `.chunked` (a request whose codings do not end in `chunked` is
    /// classed severe).
    public var framing: BodyFraming
    /// HTTP/1.1: true unless `Connection: close`; HTTP/1.0: only with `Connection: keep-alive`.
    public var keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    public var expectContinue: Bool
    /// A WebSocket upgrade: GET, HTTP/1.1, `Upgrade: websocket` and `Connection: upgrade`.
    public var upgradeWebSocket: Bool
    /// The desync class and reason.
    public var verdict: DesyncVerdict
    /// Bytes up to and including the blank line; the body (if any) starts here.
    public var headLength: Int
    /// The status to answer with if the proxy rejects this request: 400, or 501 when the
    /// Transfer-Encoding names a coding Sluice does not implement (SPEC §3 "Errors").
    public var rejectStatus: Int
    /// Whether any Content-Length header was present (the writer re-emits one normalised field).
    public var hasContentLength: Bool

    /// An empty head whose header table has room for `headerCapacity` fields.
    public init(headerCapacity: Int) {
        method = .empty
        methodKind = .other
        target = .empty
        path = .empty
        query = .empty
        versionMinor = 1
        headers = []
        headers.reserveCapacity(headerCapacity)
        host = nil
        framing = .none
        keepAlive = true
        expectContinue = false
        upgradeWebSocket = false
        verdict = .compliant
        headLength = 0
        rejectStatus = 400
        hasContentLength = false
    }

    /// Clears every field, keeping the header table's storage.
    mutating func clear() {
        method = .empty
        methodKind = .other
        target = .empty
        path = .empty
        query = .empty
        versionMinor = 1
        headers.removeAll(keepingCapacity: true)
        host = nil
        framing = .none
        keepAlive = true
        expectContinue = false
        upgradeWebSocket = false
        verdict = .compliant
        headLength = 0
        rejectStatus = 400
        hasContentLength = false
    }
}
