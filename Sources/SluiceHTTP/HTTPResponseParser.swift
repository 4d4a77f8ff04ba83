/// A parsed response head from a target: spans into the buffer given to
/// `HTTPResponseParser.parse`.
public struct HTTPResponseHead: Sendable {
    /// The status code, 100...999.
    public var status: Int
    /// 1 for HTTP/1.1 (and 1.2 ... 1.9), 0 for HTTP/1.0.
    public var versionMinor: UInt8
    /// The reason phrase (may be empty). Addition to the brief: `HTTPWriter` copies it.
    public var reason: ByteRange
    /// The header fields in order (storage reserved once, reused by `reset()`).
    public var headers: [HTTPHeader]
    /// Body framing: `.none` for a HEAD request, 1xx, 204, 304 and a 2xx to CONNECT; `.chunked`
    /// when the last transfer-coding is chunked; `.contentLength` from a valid Content-Length;
    /// `.untilClose` otherwise.
    public var framing: BodyFraming
    /// Whether the target's connection may be reused after this response: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `keep-alive`, and never for `.untilClose`.
    public var keepAlive: Bool
    /// Bytes up to and including the blank line.
    public var headLength: Int
    /// A 1xx other than 101: another head follows (`reset()` and parse again after `headLength`).
    public var isInformational: Bool
    /// 101 Switching Protocols: the connection becomes a tunnel after `headLength`.
    public var isUpgrade: Bool

    /// An empty head with room for `headerCapacity` fields.
    public init(headerCapacity: Int) {
        status = 0
        versionMinor = 1
        reason = .empty
        headers = []
        headers.reserveCapacity(headerCapacity)
        framing = .none
        keepAlive = true
        headLength = 0
        isInformational = false
        isUpgrade = false
    }

    mutating func clear() {
        status = 0
        versionMinor = 1
        reason = .empty
        headers.removeAll(keepingCapacity: true)
        framing = .none
        keepAlive = true
        headLength = 0
        isInformational = false
        isUpgrade = false
    }
}

/// A resumable, allocation-free parser for target responses. Targets are trusted more than
/// clients, but a response that cannot be framed safely (bad status line, NUL/CR in a header,
/// whitespace before a colon, conflicting Content-Length) is `.error` with status 502, and the
/// proxy closes the target connection. A bare-LF line end is accepted (RFC 9112 §2.2 allows it).
public struct HTTPResponseParser: Sendable {
    private enum Phase: UInt8, Sendable { case statusLine, headers, complete, failed }

    /// Limits: `maxRequestLine` bounds the status line, `maxHeadBytes`/`maxHeaders` the head.
    public let limits: HTTPLimits
    /// The head; complete after `parse` returned `.complete`.
    public private(set) var head: HTTPResponseHead

    private var lines = LineScanner()
    private var phase = Phase.statusLine

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
        head = HTTPResponseHead(headerCapacity: limits.maxHeaders)
    }

    /// Prepares for the next response; keeps the header table's storage.
    public mutating func reset() {
        head.clear()
        lines = LineScanner()
        phase = .statusLine
    }

    /// Parses as far as `bytes` allows (same start each call, more bytes each time).
    /// `requestMethod` is the method of the request this answers (HEAD and CONNECT change framing).
    public mutating func parse(_ bytes: UnsafeRawBufferPointer, requestMethod: HTTPMethod) -> HTTPParseResult {
        switch phase {
        case .complete: return .complete
        case .failed: return .error(.badResponse)
        case .statusLine, .headers: break
        }
        precondition(bytes.count >= lines.searchPos, "HTTPResponseParser.parse: the buffer shrank; call reset() first")
        while true {
            guard let line = lines.next(bytes) else {
                if bytes.count > limits.maxHeadBytes { return fail() }
                if phase == .statusLine && bytes.count &- lines.lineStart > limits.maxRequestLine &+ 1 { return fail() }
                return .needMore
            }
            if line.next > limits.maxHeadBytes { return fail() }
            if phase == .statusLine {
                if !statusLine(bytes, line.start, line.end) { return fail() }
                phase = .headers
                continue
            }
            if line.start == line.end {
                head.headLength = line.next
                return finish(bytes, requestMethod)
            }
            let first = bytes[line.start]
            if first == 0x20 || first == 0x09 {
                // obs-fold: continue the previous value (the writer turns CR/LF into SP).
                guard let last = head.headers.indices.last else { return fail() }
                var flags = HeaderLineFlags.none
                let v = HeaderLexer.trimmedValue(bytes, line.start, line.end, &flags)
                if flags.has(.valueFatal) { return fail() }
                switch head.headers[last].kind {
                case .contentLength, .transferEncoding, .connection: return fail()
                default: break
                }
                if !v.isEmpty {
                    var h = head.headers[last]
                    if h.value.isEmpty { h.value.start = v.start }
                    h.value.count = Int32(truncatingIfNeeded: v.end &- Int(h.value.start))
                    head.headers[last] = h
                }
                continue
            }
            let lexed = HeaderLexer.lex(bytes, line.start, line.end)
            let bad: HeaderLineFlags = .noColon | .emptyName | .wsBeforeColon | .nameFatal | .valueFatal
            if lexed.flags.hasAny(bad) { return fail() }
            if head.headers.count >= limits.maxHeaders { return fail() }
            let kind = HeaderName.match(bytes, Int(lexed.name.start), Int(lexed.name.count))
            head.headers.append(HTTPHeader(name: lexed.name, value: lexed.value, kind: kind))
        }
    }

    private mutating func fail() -> HTTPParseResult {
        phase = .failed
        return .error(.badResponse)
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]`.
    private mutating func statusLine(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        guard e &- s >= 12, p.equalsExactly(s, 7, "HTTP/1."), p[s &+ 8] == 0x20 else { return false }
        let minor = p[s &+ 7] &- 0x30
        guard minor <= 9 else { return false }
        head.versionMinor = minor == 0 ? 0 : 1
        var status = 0
        for k in 9..<12 {
            let d = p[s &+ k] &- 0x30
            guard d <= 9 else { return false }
            status = status &* 10 &+ Int(d)
        }
        guard status >= 100 else { return false }
        if e &- s > 12 && p[s &+ 12] != 0x20 { return false }
        head.status = status
        head.reason = e &- s > 12 ? ByteRange(s &+ 13, e) : ByteRange(e, e)
        var i = s &+ 13
        while i < e {
            if ByteClass.table[Int(p[i])] & ByteClass.fatal != 0 { return false }
            i &+= 1
        }
        return true
    }

    private mutating func finish(_ p: UnsafeRawBufferPointer, _ method: HTTPMethod) -> HTTPParseResult {
        var clCount = 0
        var clValue: UInt64 = 0
        var clBad = false
        var teCount = 0
        var lastIsChunked = false
        var connClose = false
        var connKeepAlive = false
        for h in head.headers {
            switch h.kind {
            case .contentLength:
                ListValue.forEach(p, h.value) { s, e in
                    guard let v = ListValue.decimal(p, s, e), clCount == 0 || v == clValue else {
                        clBad = true
                        return false
                    }
                    clValue = v
                    clCount &+= 1
                    return true
                }
                if clCount == 0 { clBad = true }
            case .transferEncoding:
                teCount &+= 1
                ListValue.forEach(p, h.value) { s, e in
                    if s != e { lastIsChunked = p.equalsLowercase(s, e &- s, "chunked") }
                    return true
                }
            case .connection:
                ListValue.forEach(p, h.value) { s, e in
                    if p.equalsLowercase(s, e &- s, "close") { connClose = true }
                    else if p.equalsLowercase(s, e &- s, "keep-alive") { connKeepAlive = true }
                    return true
                }
            default:
                break
            }
        }
        let status = head.status
        head.isUpgrade = status == 101
        head.isInformational = status >= 100 && status < 200 && status != 101
        head.keepAlive = head.versionMinor == 1 ? !connClose : connKeepAlive && !connClose
        if method == .head || status < 200 || status == 204 || status == 304
            || (method == .connect && status < 300)
        {
            head.framing = .none
        } else if teCount > 0 {
            // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; not ending in chunked
            // means the body runs until close.
            head.framing = lastIsChunked ? .chunked : .untilClose
        } else if clCount > 0 || clBad {
            if clBad { return fail() }
            head.framing = clValue == 0 ? .none : .contentLength(clValue)
        } else {
            head.framing = .untilClose
        }
        if head.framing == .untilClose { head.keepAlive = false }
        phase = .complete
        return .complete
    }
}
