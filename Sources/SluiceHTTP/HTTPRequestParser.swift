/// A resumable, allocation-free HTTP/1.x request-head parser and desync classifier
/// (SPEC §3; STYLE 6, 13). Sans-I/O: it only looks at the bytes it is given.
///
/// Usage per request on a connection:
/// 1. call `parse(bytes)` with everything received since the head began (same start, more bytes
///    each time) until it returns `.complete` or `.error`;
/// 2. read `head` (ranges are offsets into `bytes`);
/// 3. after the request (and its body) is done, `reset()` and parse the next head from the byte
///    at `head.headLength + body length`.
///
/// `.error` is returned only when no head can be made out (bad request line, limits, a
/// Content-Length that gives no framing); everything else is `.complete` with a `verdict`,
/// so the proxy can apply monitor/defensive/strictest.
public struct HTTPRequestParser: Sendable {
    private enum Phase: UInt8, Sendable { case requestLine, headers, complete, failed }

    /// The limits this parser enforces.
    public let limits: HTTPLimits
    /// The head; complete after `parse` returned `.complete`.
    public private(set) var head: HTTPRequestHead

    private var lines = LineScanner()
    private var phase = Phase.requestLine
    private var failure = HTTPParseError(status: 400, reason: .none)
    /// The host of an absolute-form or authority-form target, if any.
    private var targetHost: ByteRange?

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
        head = HTTPRequestHead(headerCapacity: limits.maxHeaders)
    }

    /// Prepares for the next request on the connection; keeps the header table's storage.
    public mutating func reset() {
        head.clear()
        lines = LineScanner()
        phase = .requestLine
        targetHost = nil
    }

    /// Parses as far as `bytes` allows. `bytes` must start where the head starts and hold at
    /// least the bytes of the previous call. After `.complete` or `.error` further calls
    /// return the same result until `reset()`.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> HTTPParseResult {
        switch phase {
        case .complete: return .complete
        case .failed: return .error(failure)
        case .requestLine, .headers: break
        }
        precondition(bytes.count >= lines.searchPos, "HTTPRequestParser.parse: the buffer shrank; call reset() first")
        while true {
            guard let line = lines.next(bytes) else {
                if phase == .requestLine && bytes.count &- lines.lineStart > limits.maxRequestLine &+ 1 {
                    return fail(.uriTooLong)
                }
                if bytes.count > limits.maxHeadBytes { return fail(.headTooLarge) }
                return .needMore
            }
            if phase == .requestLine {
                if line.end &- line.start > limits.maxRequestLine { return fail(.uriTooLong) }
                if line.next > limits.maxHeadBytes { return fail(.headTooLarge) }
                // RFC 9112 §2.2: empty lines before the request line are ignored.
                if line.start == line.end { continue }
                if let e = requestLine(bytes, line) { return fail(e) }
                phase = .headers
                continue
            }
            if line.next > limits.maxHeadBytes { return fail(.headTooLarge) }
            if line.bareLF { head.verdict.raise(.severe, .badHeader) }
            if line.start == line.end {
                head.headLength = line.next
                return finish(bytes)
            }
            if let e = headerLine(bytes, line) { return fail(e) }
        }
    }

    private mutating func fail(_ e: HTTPParseError) -> HTTPParseResult {
        phase = .failed
        failure = e
        if e.reason != .none { head.verdict.raise(.severe, e.reason) }
        return .error(e)
    }

    // MARK: request line

    /// `method SP request-target SP HTTP-version`; nil on success.
    private mutating func requestLine(_ p: UnsafeRawBufferPointer, _ line: LineScanner.Line) -> HTTPParseError? {
        let table = ByteClass.table
        let start = line.start
        let end = line.end
        if line.bareLF { head.verdict.raise(.severe, .badHeader) }

        var i = start
        var methodOK = true
        while i < end && p[i] != 0x20 {
            if table[Int(p[i])] & ByteClass.token == 0 { methodOK = false }
            i &+= 1
        }
        if i == start { return HTTPParseError(status: 400, reason: .badMethod) }
        if i == end { return HTTPParseError(status: 400, reason: .badUri) }
        if !methodOK { head.verdict.raise(.severe, .badMethod) }
        head.method = ByteRange(start, i)
        head.methodKind = HTTPMethod.match(p, start, i &- start)

        // The version is after the last SP; the target is everything between.
        var j = end &- 1
        while j > i && p[j] != 0x20 { j &-= 1 }
        if j == i { return HTTPParseError(status: 400, reason: .badVersion) }  // HTTP/0.9 is not served
        version(p, j &+ 1, end)

        var ts = i &+ 1
        var te = j
        while ts < te && p[ts] == 0x20 { ts &+= 1 }
        while te > ts && p[te &- 1] == 0x20 { te &-= 1 }
        if ts == te { return HTTPParseError(status: 400, reason: .badUri) }
        if ts != i &+ 1 || te != j { head.verdict.raise(.acceptable, .spaceInUri) }
        head.target = ByteRange(ts, te)
        targetCharacters(p, ts, te)
        targetForm(p, ts, te)
        return nil
    }

    private mutating func version(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) {
        if p.equalsExactly(s, e &- s, "HTTP/1.1") {
            head.versionMinor = 1
        } else if p.equalsExactly(s, e &- s, "HTTP/1.0") {
            head.versionMinor = 0
        } else if e &- s == 8 && p.equalsExactly(s, 7, "HTTP/1.") && p[s &+ 7] >= 0x32 && p[s &+ 7] <= 0x39 {
            head.versionMinor = 1
            head.verdict.raise(.acceptable, .nonCompliantVersion)
        } else {
            head.versionMinor = 1
            head.verdict.raise(.severe, .badVersion)
        }
    }

    private mutating func targetCharacters(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) {
        let table = ByteClass.table
        var i = s
        while i < e {
            let b = p[i]
            let c = table[Int(b)]
            if c & ByteClass.vchar == 0 {
                if c & ByteClass.fatal != 0 {
                    head.verdict.raise(.severe, .badUri)
                } else if c & ByteClass.ctl != 0 {
                    head.verdict.raise(.ambiguous, .ambiguousUri)
                } else if b == 0x20 {
                    head.verdict.raise(.acceptable, .spaceInUri)
                } else {
                    head.verdict.raise(.acceptable, .nonCompliantUri)
                }
            }
            i &+= 1
        }
    }

    /// Splits the target into path and query by its form (RFC 9112 §3.2).
    private mutating func targetForm(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) {
        let first = p[s]
        if head.methodKind == .connect {
            // authority-form: host:port, nothing else.
            if first == 0x2F || e - s == 1 && first == 0x2A { head.verdict.raise(.severe, .badUri) }
            targetHost = ByteRange(s, e)
            head.path = ByteRange(e, e)
            head.query = ByteRange(e, e)
            return
        }
        if first == 0x2F {
            splitPathQuery(p, s, e)
            return
        }
        if first == 0x2A && e &- s == 1 {
            if head.methodKind != .options { head.verdict.raise(.severe, .badUri) }
            head.path = ByteRange(s, e)
            head.query = ByteRange(e, e)
            return
        }
        var authorityStart = -1
        if e &- s >= 7 && p.equalsLowercase(s, 7, "http://") {
            authorityStart = s &+ 7
        } else if e &- s >= 8 && p.equalsLowercase(s, 8, "https://") {
            authorityStart = s &+ 8
        }
        guard authorityStart >= 0 else {
            head.verdict.raise(.severe, .badUri)
            head.path = ByteRange(s, e)
            head.query = ByteRange(e, e)
            return
        }
        var a = authorityStart
        while a < e && p[a] != 0x2F && p[a] != 0x3F && p[a] != 0x23 {
            if p[a] == 0x40 { head.verdict.raise(.severe, .badUri) }  // userinfo is not accepted
            a &+= 1
        }
        if a == authorityStart { head.verdict.raise(.severe, .badUri) }
        targetHost = ByteRange(authorityStart, a)
        splitPathQuery(p, a, e)
    }

    private mutating func splitPathQuery(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) {
        var q = s
        while q < e && p[q] != 0x3F { q &+= 1 }
        head.path = ByteRange(s, q)
        head.query = q < e ? ByteRange(q &+ 1, e) : ByteRange(e, e)
    }

    // MARK: header lines

    private mutating func headerLine(_ p: UnsafeRawBufferPointer, _ line: LineScanner.Line) -> HTTPParseError? {
        let first = p[line.start]
        if first == 0x20 || first == 0x09 {
            obsFold(p, line)
            return nil
        }
        let lexed = HeaderLexer.lex(p, line.start, line.end)
        let f = lexed.flags
        if f.has(.noColon) {
            // The line is dropped (never forwarded). It hides a framing header from us if it is one.
            if HeaderLexer.isSuspicious(p, lexed.name) { head.verdict.raise(.ambiguous, .suspiciousHeader) }
            head.verdict.raise(.ambiguous, .missingHeaderColon)
            if f.has(.nameFatal) { head.verdict.raise(.severe, .badHeader) }
            return nil
        }
        if f.has(.emptyName) {
            head.verdict.raise(.ambiguous, .emptyHeader)
            if f.has(.valueFatal) { head.verdict.raise(.severe, .badHeader) }
            return nil
        }
        if f.has(.nameFatal) {
            // NUL or a bare CR in a name: severe, and the field is not kept (never forwarded).
            head.verdict.raise(.severe, .badHeader)
            return nil
        }
        if head.headers.count >= limits.maxHeaders { return .headTooLarge }
        let kind = HeaderName.match(p, Int(lexed.name.start), Int(lexed.name.count))
        if f.has(.valueFatal) || f.has(.wsBeforeColon) {
            head.verdict.raise(.severe, .badHeader)
        }
        if kind == .other && HeaderLexer.isSuspicious(p, lexed.name) {
            head.verdict.raise(.ambiguous, .suspiciousHeader)
        }
        if f.has(.nameNotToken) || f.has(.valueCtl) || f.has(.valueObsText) {
            head.verdict.raise(.acceptable, .nonCompliantHeader)
        }
        head.headers.append(HTTPHeader(name: lexed.name, value: lexed.value, kind: kind))
        return nil
    }

    /// A line starting with whitespace continues the previous field (obs-fold, RFC 9112 §5.2).
    private mutating func obsFold(_ p: UnsafeRawBufferPointer, _ line: LineScanner.Line) {
        guard let last = head.headers.indices.last else {
            // Whitespace before the first header line (RFC 9112 §2.2: reject or ignore; could hide a header).
            head.verdict.raise(.severe, .badHeader)
            return
        }
        var flags = HeaderLineFlags.none
        let v = HeaderLexer.trimmedValue(p, line.start, line.end, &flags)
        if flags.has(.valueFatal) { head.verdict.raise(.severe, .badHeader) }
        switch head.headers[last].kind {
        case .contentLength, .transferEncoding, .host, .connection, .upgrade, .expect:
            // A folded header the proxy acts on: servers that do not unfold see another value.
            head.verdict.raise(.severe, .badHeader)
        default:
            break
        }
        // A folded line that reads like `Transfer-Encoding: chunked` to a server that trims it.
        let lexed = HeaderLexer.lex(p, Int(v.start), v.end)
        if !lexed.flags.has(.noColon) {
            let k = HeaderName.match(p, Int(lexed.name.start), Int(lexed.name.count))
            if k == .transferEncoding || k == .contentLength || HeaderLexer.isSuspicious(p, lexed.name) {
                head.verdict.raise(.ambiguous, .suspiciousHeader)
            }
        }
        head.verdict.raise(.ambiguous, .multilineHeader)
        if !v.isEmpty {
            var h = head.headers[last]
            if h.value.isEmpty { h.value.start = v.start }
            h.value.count = Int32(truncatingIfNeeded: v.end &- Int(h.value.start))
            head.headers[last] = h
        }
    }

    // MARK: semantics

    private mutating func finish(_ p: UnsafeRawBufferPointer) -> HTTPParseResult {
        var clCount = 0
        var clValue: UInt64 = 0
        var clFirst: UInt64 = 0
        var clBad = false
        var clDiffer = false
        var teCount = 0
        var chunkedCount = 0
        var lastIsChunked = false
        var teUnknown = false
        var teEmpty = false
        var hostCount = 0
        var connClose = false
        var connKeepAlive = false
        var connUpgrade = false
        var upgradeWebSocket = false
        var expect100 = false

        for h in head.headers {
            switch h.kind {
            case .contentLength:
                ListValue.forEach(p, h.value) { s, e in
                    guard let v = ListValue.decimal(p, s, e) else {
                        clBad = true
                        return false
                    }
                    if clCount > 0 && v != clValue { clDiffer = true }
                    if clCount == 0 { clFirst = v }
                    clValue = v
                    clCount &+= 1
                    return true
                }
                if clCount == 0 { clBad = true }
            case .transferEncoding:
                teCount &+= 1
                var elements = 0
                ListValue.forEach(p, h.value) { s, e in
                    if s == e { return true }  // empty list elements are allowed (RFC 9110 §5.6.1)
                    elements &+= 1
                    if p.equalsLowercase(s, e &- s, "chunked") {
                        chunkedCount &+= 1
                        lastIsChunked = true
                    } else {
                        lastIsChunked = false
                        if !Self.isKnownCoding(p, s, e) { teUnknown = true }
                    }
                    return true
                }
                if elements == 0 { teEmpty = true }
            case .host:
                hostCount &+= 1
                if hostCount == 1 { head.host = h.value }
            case .connection:
                ListValue.forEach(p, h.value) { s, e in
                    if p.equalsLowercase(s, e &- s, "close") { connClose = true }
                    else if p.equalsLowercase(s, e &- s, "keep-alive") { connKeepAlive = true }
                    else if p.equalsLowercase(s, e &- s, "upgrade") { connUpgrade = true }
                    return true
                }
            case .upgrade:
                if ListValue.contains(p, h.value, "websocket") { upgradeWebSocket = true }
            case .expect:
                if p.equalsLowercase(Int(h.value.start), Int(h.value.count), "100-continue") { expect100 = true }
            default:
                break
            }
        }

        let getOrHead = head.methodKind == .get || head.methodKind == .head
        if hostCount > 1 { head.verdict.raise(.severe, .multipleHost) }
        if let t = targetHost { head.host = t }
        if hostCount == 0 && head.versionMinor == 1 && targetHost == nil { head.verdict.raise(.acceptable, .missingHost) }
        head.hasContentLength = clCount > 0 || clBad

        if teCount > 0 {
            if chunkedCount > 1 { head.verdict.raise(.severe, .multipleTransferEncodingChunked) }
            if teUnknown || teEmpty || !lastIsChunked { head.verdict.raise(.severe, .badTransferEncoding) }
            if teUnknown { head.rejectStatus = 501 }
            if clBad { head.verdict.raise(.severe, .badContentLength) }
            if clDiffer { head.verdict.raise(.severe, .multipleContentLength) }
            if clCount > 0 || clBad { head.verdict.raise(.ambiguous, .bothTeClPresent) }
            if getOrHead || head.versionMinor == 0 { head.verdict.raise(.ambiguous, .undefinedTransferEncodingSemantics) }
            head.framing = .chunked
        } else if clCount > 0 || clBad {
            // Without Transfer-Encoding the Content-Length is the only framing: if it is not
            // a number the body's end is unknown, so there is no head to forward.
            if clBad { return fail(HTTPParseError(status: 400, reason: .badContentLength)) }
            // Differing values are severe (rejected unless the mode is `monitor`); the body
            // is framed by the first, and the target gets that one value (the writer emits a
            // single Content-Length from the framing), so Sluice and the target agree.
            if clDiffer {
                head.verdict.raise(.severe, .multipleContentLength)
                clValue = clFirst
            }
            if clCount > 1 { head.verdict.raise(.ambiguous, .duplicateContentLength) }
            if getOrHead {
                if clValue == 0 {
                    head.verdict.raise(.acceptable, .getHeadZeroContentLength)
                } else {
                    head.verdict.raise(.ambiguous, .undefinedContentLengthSemantics)
                }
            }
            head.framing = clValue == 0 ? .none : .contentLength(clValue)
        } else {
            head.framing = .none
        }

        head.keepAlive = head.versionMinor == 1 ? !connClose : connKeepAlive && !connClose
        head.expectContinue = expect100 && head.versionMinor == 1
        head.upgradeWebSocket = head.methodKind == .get && head.versionMinor == 1 && upgradeWebSocket && connUpgrade
        phase = .complete
        return .complete
    }

    /// Transfer-codings Sluice can pass through (RFC 9110 §18.7 registry, minus the removed
    /// `identity`), optionally with parameters (`gzip;q=1` is not valid, but parameters are).
    static func isKnownCoding(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        var n = s
        while n < e && ByteClass.table[Int(p[n])] & ByteClass.token != 0 { n &+= 1 }
        if n < e {
            // Only `;` parameters may follow the coding name.
            var k = n
            while k < e && ByteClass.table[Int(p[k])] & ByteClass.ows != 0 { k &+= 1 }
            if k == e || p[k] != 0x3B { return false }
        }
        let len = n &- s
        return p.equalsLowercase(s, len, "gzip") || p.equalsLowercase(s, len, "x-gzip")
            || p.equalsLowercase(s, len, "deflate") || p.equalsLowercase(s, len, "compress")
            || p.equalsLowercase(s, len, "x-compress")
    }
}
