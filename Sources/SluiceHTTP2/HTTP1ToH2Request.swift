import SluiceHTTP

/// Translates the HTTP/1.1 request bytes the data plane writes to a target into an HTTP/2
/// request for `H2ClientSession` (`protocol_version: http2 | grpc`): head, body bytes, trailers,
/// end. Incremental like `HTTP1ToH2Response` (same `step` contract).
///
/// `:authority` comes from Host, `:path` from the request-target (origin-form, or the path of an
/// absolute-form target), `:scheme` from `init`. Connection-specific fields, Host, Expect and a
/// `te` other than `trailers` are left out. CONNECT and upgrades are errors.
public struct HTTP1ToH2Request: Sendable {
    private enum Phase: UInt8, Sendable { case head, body, done, failed }

    private var parser: HTTPRequestParser
    private var headBuf: [UInt8] = []
    private var phase = Phase.head
    private var body = HTTP1BodyDecoder()
    private let scheme: [UInt8]

    /// After `.head`: the request for `H2ClientSession.submitRequest`.
    public private(set) var head = H2RequestHead(method: [], scheme: [], authority: [], path: [], headers: H2Headers())
    /// After `.head`: no body follows.
    public private(set) var endStream = false
    /// The method of the request (for the response translator).
    public private(set) var method = HTTPMethod.other
    public var trailers: H2Headers { body.trailers }

    public init(scheme: String = "http", limits: HTTPLimits = HTTPLimits()) {
        self.scheme = Array(scheme.utf8)
        parser = HTTPRequestParser(limits: limits)
    }

    public mutating func reset() {
        parser.reset()
        headBuf.removeAll(keepingCapacity: true)
        phase = .head
        endStream = false
        body.start(.none)
    }

    public mutating func step(_ input: UnsafeRawBufferPointer) -> (HTTP1Step, consumed: Int) {
        switch phase {
        case .failed:
            return (.error, 0)
        case .done:
            return (.end, 0)
        case .body:
            let (s, n) = body.step(input)
            if s == .end { phase = .done }
            if s == .error { phase = .failed }
            return (s, n)
        case .head:
            let prev = headBuf.count
            let room = max(0, parser.limits.maxHeadBytes &+ 2 &- prev)
            let take = min(room, input.count)
            headBuf.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
            let r = headBuf.withUnsafeBytes { parser.parse($0) }
            switch r {
            case .needMore:
                if take == 0 && input.count > 0 {
                    phase = .failed
                    return (.error, 0)
                }
                return (.needMore, take)
            case .error:
                phase = .failed
                return (.error, 0)
            case .complete:
                let used = parser.head.headLength &- prev
                guard used >= 0, used <= take, buildHead() else {
                    phase = .failed
                    return (.error, 0)
                }
                return (.head, used)
            }
        }
    }

    private mutating func buildHead() -> Bool {
        let h = parser.head
        if h.methodKind == .connect || h.upgradeWebSocket { return false }
        method = h.methodKind
        let mode: HTTP1BodyDecoder.Mode
        switch h.framing {
        case .none: mode = .none
        case .contentLength(let n): mode = .length(n)
        case .chunked: mode = .chunked
        case .untilClose: return false
        }
        guard let host = h.host else { return false }
        func slice(_ r: ByteRange) -> ArraySlice<UInt8>? {
            let s = Int(truncatingIfNeeded: r.start)
            guard s >= 0, r.end <= headBuf.count, s <= r.end else { return nil }
            return headBuf[s..<r.end]
        }
        guard let m = slice(h.method), let a = slice(host), let target = slice(h.target) else { return false }
        // RFC 9113 §8.3.1: :authority is host[:port] (no userinfo). The HTTP/1 parser does not
        // check Host's bytes, and a strict h2 target resets a stream whose :authority has SP,
        // CTLs or delimiters: refuse the bytes H2ToHTTP1Request refuses in one it receives.
        for b in a where b <= 0x20 || b == 0x7F || b == 0x2F || b == 0x3F || b == 0x23 || b == 0x40 { return false }
        var path = target
        if target.first != 0x2F && !(target.count == 1 && target.first == 0x2A) {
            // absolute-form: keep what follows the authority.
            guard let p = slice(h.path), let q = slice(h.query) else { return false }
            // The path of "http://host#frag" is "#frag" (the parser ends the authority at '#'):
            // :path must start with "/" (RFC 9113 §8.3.1), and a fragment is not sent.
            guard p.isEmpty || p.first == 0x2F else { return false }
            var built: [UInt8] = p.isEmpty ? [0x2F] : Array(p)
            if !q.isEmpty {
                built.append(0x3F)
                built.append(contentsOf: q)
            }
            path = built[...]
        }
        var out = H2Headers()
        for f in h.headers {
            switch f.kind {
            case .host, .connection, .keepAlive, .proxyConnection, .transferEncoding, .upgrade, .trailer, .expect:
                continue
            case .contentLength:
                if mode == .chunked { continue }
            default:
                break
            }
            guard let name = slice(f.name), let value = slice(f.value) else { return false }
            if f.kind == .te && !H2Bytes.equalsLowercase(value, "trailers") { continue }
            if H2Translate.isConnectionSpecific(name) { continue }
            out.append(name: name.lazy.map(H2Bytes.lower), value: value.lazy.map { $0 == 0x0D || $0 == 0x0A ? 0x20 : $0 })
        }
        head = H2RequestHead(method: m, scheme: scheme[...], authority: a, path: path, headers: out)
        endStream = mode == .none
        body.start(mode)
        phase = .body
        return true
    }
}
