import SluiceHTTP

/// Translates the HTTP/1.1 response bytes the data plane writes towards a client into an HTTP/2
/// response: a head (status and fields fit for HTTP/2), body bytes, trailers, end. Incremental:
/// call `step` with the bytes not yet consumed, any split works.
///
/// 1xx heads (100 Continue, 103 Early Hints) are dropped: HTTP/2 needs no 100 Continue, and
/// Sluice does not forward hints. A 101 cannot be expressed in HTTP/2 and is an error.
///
/// ```
/// var off = 0
/// loop: while true {
///     let (s, used) = t.step(UnsafeRawBufferPointer(rebasing: buf[off...])); defer { off += used }
///     switch s { case .head: respond(t.status, t.headers, t.endStream) ... case .needMore: break loop }
/// }
/// ```
public struct HTTP1ToH2Response: Sendable {
    private enum Phase: UInt8, Sendable { case head, body, done, failed }

    private var parser: HTTPResponseParser
    private var headBuf: [UInt8] = []
    private var phase = Phase.head
    private var body = HTTP1BodyDecoder()
    /// The method of the request this answers (HEAD and CONNECT change framing).
    public var requestMethod: HTTPMethod

    /// The status, after `.head`.
    public private(set) var status = 0
    /// The response fields for HTTP/2, after `.head`: names lower-cased; connection-specific
    /// fields, Transfer-Encoding, and Content-Length of a chunked response left out.
    public private(set) var headers = H2Headers()
    /// After `.head`: no body follows (send the head with END_STREAM).
    public private(set) var endStream = false
    /// After `.trailers`: the chunked trailer section.
    public var trailers: H2Headers { body.trailers }

    public init(requestMethod: HTTPMethod, limits: HTTPLimits = HTTPLimits()) {
        self.requestMethod = requestMethod
        parser = HTTPResponseParser(limits: limits)
    }

    /// Ready for the next response (on a connection's next request).
    public mutating func reset(requestMethod: HTTPMethod) {
        self.requestMethod = requestMethod
        parser.reset()
        headBuf.removeAll(keepingCapacity: true)
        phase = .head
        status = 0
        headers.removeAll()
        endStream = false
        body.start(.none)
    }

    /// The data plane closed the "connection": ends an until-close body, else an error.
    public mutating func endOfInput() -> HTTP1Step {
        switch phase {
        case .done: return .end
        case .failed, .head:
            phase = .failed
            return .error
        case .body:
            let s = body.endOfInput()
            phase = s == .end ? .done : .failed
            return s
        }
    }

    /// One step over `input`; returns the step and how many bytes of `input` it used.
    public mutating func step(_ input: UnsafeRawBufferPointer) -> (HTTP1Step, consumed: Int) {
        var used = 0
        while true {
            switch phase {
            case .failed:
                return (.error, used)
            case .done:
                return (.end, used)
            case .body:
                let (s, n) = body.step(UnsafeRawBufferPointer(rebasing: input[used...]))
                switch s {
                case .body(let r): return (.body((r.lowerBound &+ used)..<(r.upperBound &+ used)), used &+ n)
                case .end: phase = .done
                case .error: phase = .failed
                default: break
                }
                return (s, used &+ n)
            case .head:
                let prev = headBuf.count
                let room = max(0, parser.limits.maxHeadBytes &+ 2 &- prev)
                let take = min(room, input.count &- used)
                headBuf.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[used..<(used &+ take)]))
                let r = headBuf.withUnsafeBytes { parser.parse($0, requestMethod: requestMethod) }
                switch r {
                case .needMore:
                    if take == 0 && input.count > used {
                        phase = .failed
                        return (.error, used)
                    }
                    return (.needMore, used &+ take)
                case .error:
                    phase = .failed
                    return (.error, used)
                case .complete:
                    let headUsed = parser.head.headLength &- prev
                    guard headUsed >= 0, headUsed <= take else {
                        phase = .failed
                        return (.error, used)
                    }
                    used &+= headUsed
                    if parser.head.isUpgrade {
                        phase = .failed
                        return (.error, used)
                    }
                    if parser.head.isInformational {
                        parser.reset()
                        headBuf.removeAll(keepingCapacity: true)
                        continue
                    }
                    buildHead()
                    return (.head, used)
                }
            }
        }
    }

    private mutating func buildHead() {
        let h = parser.head
        status = h.status
        headers.removeAll()
        let mode: HTTP1BodyDecoder.Mode
        switch h.framing {
        case .none: mode = .none
        case .contentLength(let n): mode = .length(n)
        case .chunked: mode = .chunked
        case .untilClose: mode = .untilClose
        }
        headBuf.withUnsafeBufferPointer { p in
            for f in h.headers {
                let ns = Int(truncatingIfNeeded: f.name.start)
                let vs = Int(truncatingIfNeeded: f.value.start)
                guard ns >= 0, vs >= 0, f.name.end <= p.count, f.value.end <= p.count else { continue }
                let name = p[ns..<f.name.end]
                switch f.kind {
                case .connection, .keepAlive, .proxyConnection, .transferEncoding, .upgrade, .te: continue
                case .contentLength: if mode == .chunked || mode == .untilClose { continue }
                default: break
                }
                if H2Translate.isConnectionSpecific(name) { continue }
                headers.appendTranslated(name: UnsafeBufferPointer(rebasing: name),
                                         value: UnsafeBufferPointer(rebasing: p[vs..<f.value.end]))
            }
        }
        body.start(mode)
        endStream = mode == .none
        phase = .body
    }
}
