import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// The L7 data path, the exchange: starting it, the request and its body on the way in, the
/// response and its body on the way out, the actions of `HTTP1Exchange`, WebSocket tunnels,
/// closing and timers. Target connections are in `Worker+Upstream.swift`.
extension Worker {
    /// Most idle connections kept per target.
    static let poolLimitPerTarget = 128
    /// Idle pooled connections older than this are closed rather than reused.
    static let poolIdleLimit: UInt64 = 30 * 1_000_000_000

    func startExchange(_ c: HTTPConnection, head: HTTPRequestHead, listener l: Plan.ListenerPlan,
                       groups: [WeightedGroup], choice: Int) {
        let p = plan(of: c)
        c.exchange.group = groups.count == 1 ? groups[0].group : groups[actionChoosers[c.listener][choice].next() ?? 0].group
        c.exchange.tried = TriedTargets()
        c.exchange.heldTarget = -1
        c.exchange.surgeQueued = false
        c.exchange.surgeSince = 0
        c.exchange.surgeTurn = false
        c.exchange.retryAfter = false
        c.exchange.responseParser.reset()
        c.exchange.request.begin(head.framing)
        c.exchange.forwarded = true
        c.exchange.keyHash = requestKeyHash(c, head, p.groups[c.exchange.group])
        // The rewritten head goes to `toTarget`; the original head leaves `input`.
        if c.exchange.toTarget.base == nil { c.exchange.toTarget.base = httpBuffers.acquire() }
        c.exchange.toTarget.start = 0
        let written = c.clientCertHeaders.withUnsafeBytes { extra in
            HTTPWriter.writeUpstreamHead(
                head, source: c.input.bytes,
                into: UnsafeMutableRawBufferPointer(start: c.exchange.toTarget.base!, count: httpBuffers.bufferSize),
                options: HTTPWriter.ForwardOptions(xff: l.xff, clientAddress: c.clientText, proto: l.proto, port: l.port,
                                                   traceID: nextTraceID(), keepAliveToTarget: true, extraHeaders: extra))
        }
        guard let n = written else {
            perform(c, c.exchange.machine.fail(status: 431))
            return
        }
        c.exchange.toTarget.end = n
        c.input.start += head.headLength
        if head.framing == .chunked && !c.exchange.request.scanChunks(c.input) {
            // The body that came with the head is already broken: answer 400 without
            // contacting a target.
            c.exchange.forwarded = false
            _ = requestBodyInvalid(c)
            return
        }
        perform(c, c.exchange.machine.forward(now: now))  // connect
        armHTTPTimer(c)  // the response timeout
    }

    private func nextTraceID() -> UInt64 {
        traceCounter &+= 1
        return StableHash.mix(traceCounter ^ UInt64(id) << 56 ^ traceSeed)
    }

    /// The hash the group's algorithm picks by: the header or cookie value for
    /// `header_hash`/`cookie_hash` (`keyMissing` when absent), else the client address. Also
    /// finds the stickiness cookie's target.
    private func requestKeyHash(_ c: HTTPConnection, _ head: HTTPRequestHead, _ g: Plan.GroupPlan) -> UInt64 {
        let source = c.input.bytes
        c.exchange.keyMissing = false
        c.exchange.stickyTarget = -1
        if let sticky = g.sticky, let v = Worker.cookie(g.stickyCookie, in: head, source) {
            // c.exchange.group indexes this worker's Plan (the request was rebased onto it).
            let weights = c.exchange.group < groupWeights.count ? groupWeights[c.exchange.group].weights : []
            if let t = sticky.target(forCookie: v), t < weights.count, weights[t] > 0 { c.exchange.stickyTarget = t }
        }
        switch g.algorithm {
        case .roundRobin, .leastOutstanding, .randomTwo:
            return 0  // not keyed
        case .headerHash:
            for h in head.headers where Worker.equalsLowercased(source, h.name, g.hashKey) {
                return StableHash.hash(UnsafeRawBufferPointer(rebasing: source[Int(h.value.start)..<h.value.end]))
            }
            c.exchange.keyMissing = true
            return 0
        case .cookieHash:
            if let v = Worker.cookie(g.hashKey, in: head, source) { return StableHash.hash(v) }
            c.exchange.keyMissing = true
            return 0
        default:
            return c.clientAddress.withAddressBytes { StableHash.hash($0) }
        }
    }

    /// True when the header name at `r` equals `lowercased` ignoring ASCII case.
    static func equalsLowercased(_ source: UnsafeRawBufferPointer, _ r: ByteRange, _ lowercased: [UInt8]) -> Bool {
        guard Int(r.count) == lowercased.count else { return false }
        var i = 0
        let base = Int(r.start)
        while i < lowercased.count {
            var b = source[base + i]
            if b >= 65 && b <= 90 { b |= 0x20 }
            if b != lowercased[i] { return false }
            i += 1
        }
        return true
    }

    /// The value of cookie `name` in the request's Cookie headers, if present.
    static func cookie(_ name: [UInt8], in head: HTTPRequestHead, _ source: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        for h in head.headers where h.kind == .cookie {
            var i = Int(h.value.start)
            let end = h.value.end
            while i < end {
                while i < end && (source[i] == 32 || source[i] == UInt8(ascii: ";")) { i += 1 }
                let nameStart = i
                while i < end && source[i] != UInt8(ascii: "=") && source[i] != UInt8(ascii: ";") { i += 1 }
                let matches = i - nameStart == name.count
                    && (0..<name.count).allSatisfy { source[nameStart + $0] == name[$0] }
                guard i < end, source[i] == UInt8(ascii: "=") else { continue }
                i += 1
                let valueStart = i
                while i < end && source[i] != UInt8(ascii: ";") { i += 1 }
                if matches { return UnsafeRawBufferPointer(rebasing: source[valueStart..<i]) }
            }
        }
        return nil
    }

    // MARK: the exchange

    /// One step of forwarding. Returns true when the state changed.
    func exchange(_ c: HTTPConnection) -> Bool {
        guard let u = c.exchange.upstream else { return false }
        if u.connecting { return false }
        var progressed = false
        // Request: rewritten head, then body bytes from `input`.
        switch flush(&c.exchange.toTarget, to: u.fd, transport: u.transport, io: &u.io, release: false) {
        case .failed: return targetFailed(c)
        case .pending: break
        case .done:
            switch forwardBody(&c.exchange.request, from: &c.input, to: u.fd, transport: u.transport, io: &u.io,
                               counted: &c.exchange.bytesFromClient) {
            case .failed: return targetFailed(c)
            case .invalid: return requestBodyInvalid(c)
            case .progressed: progressed = true
            case .idle: break
            }
            let limit = plan(of: c).listeners[c.listener].maxRequestBody
            if limit > 0, c.exchange.request.framing == .chunked, c.exchange.request.chunks.dataBytes > limit {
                // A chunked body crossed max_request_body: the target gets a cut-off body
                // on a connection that is closed, never reused.
                perform(c, c.exchange.machine.abort())
                return false
            }
            if c.exchange.request.done {
                c.exchange.machine.requestSent()
            } else if c.input.isEmpty && c.clientIO.readable {
                switch readClient(c) {
                case .data: progressed = true
                case .wait: break
                case .closed, .failed:
                    // The client left in the middle of its request body.
                    perform(c, c.exchange.machine.abort())
                    return false
                }
            }
        }
        // Response: head, then body, to the client.
        switch pumpResponse(c, u) {
        case .failed, .invalid:
            // Already handled; a retry or an answer of Sluice's own may follow, which the
            // state machine must go on to run (no new event will ask for it).
            return c.state != .free
        case .progressed:
            progressed = true
        case .idle:
            break
        }
        guard case .exchanging = c.exchange.machine.state else { return true }
        if c.exchange.response.done { c.exchange.machine.responseBodyDone() }
        if c.toClient.isEmpty {
            let next = c.exchange.machine.complete(leftovers: !c.exchange.fromTarget.isEmpty)
            if next != .none {
                perform(c, next)
                return true
            }
        }
        return progressed
    }

    /// `invalid`: the body broke its chunked framing (the sender's fault, not the transport's).
    enum StepOutcome { case progressed, idle, failed, invalid }

    /// Forwards body bytes of `q` as far as the framing allows; bytes of a chunked body go
    /// out only once the scanner has passed them.
    func forwardBody(_ body: inout BodyProgress, from q: inout ByteQueue, to fd: Int32,
                     transport: Transport, io: inout Readiness, counted: inout UInt64) -> StepOutcome {
        var moved = false
        while !body.done && !q.isEmpty && io.writable {
            var n: Int
            switch body.framing {
            case .none:
                return .idle
            case .contentLength:
                n = Int(min(UInt64(q.count), body.remaining))
            case .untilClose:
                n = q.count
            case .chunked:
                if !body.scanChunks(q) { return .invalid }
                n = body.chunkReady
            }
            if n == 0 { break }
            switch io.write(transport, fd, from: q.base! + q.start, count: n) {
                case .moved(let w):
                    q.start += w
                    counted &+= UInt64(w)
                    moved = true
                    switch body.framing {
                    case .contentLength:
                        body.remaining -= UInt64(w)
                        if body.remaining == 0 { body.done = true }
                    case .chunked:
                        body.chunkReady -= w
                        if body.chunkEnded && body.chunkReady == 0 { body.done = true }
                    default: break
                    }
                case .wait:
                    break
                case .closed, .failed:
                    return .failed
            }
        }
        if q.isEmpty {
            q.start = 0
            q.end = 0
        }
        return moved ? .progressed : .idle
    }

    private func pumpResponse(_ c: HTTPConnection, _ u: UpstreamConnection) -> StepOutcome {
        var moved = false
        while true {
            // Out first: what is queued for the client.
            switch flush(&c.toClient, to: c.clientFd, transport: c.transport, io: &c.clientIO) {
            case .failed:
                perform(c, c.exchange.machine.abort())
                return .failed
            case .pending:
                return moved ? .progressed : .idle
            case .done: break
            }
            if c.exchange.responseHeadDone {
                switch forwardBody(&c.exchange.response, from: &c.exchange.fromTarget, to: c.clientFd,
                                   transport: c.transport, io: &c.clientIO, counted: &c.exchange.bytesToClient) {
                case .failed, .invalid:
                    // A broken response body: the client has a head already, so it can only
                    // be cut off.
                    perform(c, c.exchange.machine.abort())
                    return .failed
                case .progressed: moved = true
                case .idle: break
                }
                if c.exchange.response.done || !c.exchange.fromTarget.isEmpty { return moved ? .progressed : .idle }
            } else if !c.exchange.fromTarget.isEmpty {
                switch c.exchange.responseParser.parse(c.exchange.fromTarget.bytes, requestMethod: c.exchange.machine.method) {
                case .complete:
                    guard handleResponseHead(c, u) else { return .failed }
                    if c.exchange.machine.state == .tunnel { return .progressed }  // the rest is tunnel bytes
                    moved = true
                    continue
                case .error:
                    perform(c, c.exchange.machine.badResponse())
                    return .failed
                case .needMore:
                    if c.exchange.fromTarget.end == httpBuffers.bufferSize {
                        if c.exchange.fromTarget.start == 0 {
                            perform(c, c.exchange.machine.badResponse())
                            return .failed
                        }
                        c.exchange.fromTarget.compact()
                    }
                }
            }
            // In: more from the target.
            guard u.io.readable else { return moved ? .progressed : .idle }
            if c.exchange.fromTarget.base == nil { c.exchange.fromTarget.base = httpBuffers.acquire() }
            let room = httpBuffers.bufferSize - c.exchange.fromTarget.end
            if room == 0 { return moved ? .progressed : .idle }
            switch u.io.read(u.transport, u.fd, into: c.exchange.fromTarget.base! + c.exchange.fromTarget.end, count: room) {
                case .closed:
                    let untilClose = c.exchange.responseHeadDone && c.exchange.response.framing == .untilClose
                    let next = c.exchange.machine.targetClosed(bodyUntilClose: untilClose, policy: policy(of: c))
                    if next == .none {
                        c.exchange.response.done = true
                        return .progressed
                    }
                    perform(c, next)  // a truncated response must not pass as whole
                    return .failed
                case .moved(let n):
                    c.exchange.fromTarget.end += n
                    c.lastActivity = now
                    moved = true
                case .wait:
                    break
                case .failed:
                    _ = targetFailed(c)
                    return .failed
            }
        }
    }

    /// A complete response head is in `fromTarget`. Returns false if the exchange ended.
    private func handleResponseHead(_ c: HTTPConnection, _ u: UpstreamConnection) -> Bool {
        let head = c.exchange.responseParser.head
        switch c.exchange.machine.responseHead(status: head.status, framing: head.framing, keepAlive: head.keepAlive) {
        case .forwardInformational, .startTunnel:
            // 100 Continue and friends pass through as they are, the real head follows; a
            // 101 passes as it is and the connection becomes a tunnel.
            queueToClient(c, Array(UnsafeRawBufferPointer(rebasing: c.exchange.fromTarget.bytes[..<head.headLength])))
            c.exchange.fromTarget.start += head.headLength
            c.exchange.responseParser.reset()
            return true
        case .forwardHead(let framing, let close):
            return forwardResponseHead(c, u, head, framing: framing, close: close)
        default:
            assertionFailure("response head outside an exchange")
            return false
        }
    }

    private func forwardResponseHead(_ c: HTTPConnection, _ u: UpstreamConnection, _ head: HTTPResponseHead,
                                     framing: BodyFraming, close: Bool) -> Bool {
        if c.toClient.base == nil { c.toClient.base = httpBuffers.acquire() }
        if c.toClient.isEmpty {
            c.toClient.start = 0
            c.toClient.end = 0
        }
        let out = UnsafeMutableRawBufferPointer(start: c.toClient.base! + c.toClient.end,
                                                count: httpBuffers.bufferSize - c.toClient.end)
        guard let n = HTTPWriter.writeDownstreamHead(head, source: c.exchange.fromTarget.bytes, into: out, close: close,
                                                     clientVersionMinor: c.exchange.versionMinor) else {
            perform(c, c.exchange.machine.badResponse())
            return false
        }
        c.toClient.end += n
        c.exchange.bytesToClient &+= UInt64(n)
        let g = plan(of: c).groups[c.exchange.group]
        if let sticky = g.sticky, n >= 2 {
            // Insert the stickiness cookie before the head's final CRLF.
            c.toClient.end -= 2
            let line = "set-cookie: " + String(decoding: g.stickyCookie, as: UTF8.self) + "="
                + sticky.cookieValue(for: u.target) + "; Max-Age=\(g.stickySeconds); Path=/\r\n\r\n"
            queueToClient(c, Array(line.utf8))
        }
        c.exchange.fromTarget.start += head.headLength
        c.exchange.response.begin(framing)
        c.exchange.logStatus = head.status
        if head.status >= 500 { u.runtime?.failed() } else { u.runtime?.succeeded() }
        // Stickiness puts its cookie in `toClient` behind the head; bodies follow it.
        if case .contentLength = framing { coalesceBody(c) }
        if c.exchange.response.done { c.exchange.machine.responseBodyDone() }
        armHTTPTimer(c)
        counters.responses &+= 1
        return true
    }

    /// Copies the start of a Content-Length body that arrived with the head behind the
    /// rewritten head, so head and a small body leave in one write.
    private func coalesceBody(_ c: HTTPConnection) {
        let room = httpBuffers.bufferSize - c.toClient.end
        let n = Int(min(UInt64(min(c.exchange.fromTarget.count, room)), c.exchange.response.remaining))
        guard n > 0, n <= Worker.coalesceLimit else { return }
        (c.toClient.base! + c.toClient.end).copyMemory(from: c.exchange.fromTarget.base! + c.exchange.fromTarget.start, byteCount: n)
        c.toClient.end += n
        c.exchange.fromTarget.start += n
        c.exchange.response.remaining -= UInt64(n)
        c.exchange.bytesToClient &+= UInt64(n)
        if c.exchange.response.remaining == 0 { c.exchange.response.done = true }
    }

    /// Largest body copied behind a response head (bigger ones are written from their buffer).
    static let coalesceLimit = 16 * 1024

    /// The client's chunked request body broke its framing: the client's fault. The machine
    /// answers 400 (or closes, if the response already began); the target connection, which
    /// may hold part of the body, is closed, never pooled, and not counted against the target.
    /// The request's logged class becomes severe, `InvalidChunkSize` (counted once, when the
    /// request is logged). Returns true when the session should run again.
    private func requestBodyInvalid(_ c: HTTPConnection) -> Bool {
        c.exchange.logVerdict.raise(.severe, .invalidChunkSize)
        perform(c, c.exchange.machine.requestBodyInvalid())
        return c.state != .free
    }

    /// The target failed (write or read error, early close): the machine decides between a
    /// replay, a 502 and a plain close. Returns true when the session should run again.
    private func targetFailed(_ c: HTTPConnection) -> Bool {
        perform(c, c.exchange.machine.targetFailed(policy: policy(of: c)))
        return c.state != .free
    }

    /// The listener's exchange policy on the connection's Plan.
    func policy(of c: HTTPConnection) -> HTTP1Exchange.Policy { plan(of: c).listeners[c.listener].exchangePolicy }

    /// Performs what the exchange machine asked for.
    func perform(_ c: HTTPConnection, _ action: HTTP1Exchange.Action) {
        switch action {
        case .none, .forwardInformational, .forwardHead, .startTunnel:
            // The head actions are performed where the head is (`handleResponseHead`).
            break
        case .connect:
            connectUpstream(c)
        case .retry:
            assert(c.exchange.toTarget.base != nil, "the request head is kept until the exchange ends")
            releaseUpstream(c, reusable: false)
            c.exchange.toTarget.start = 0
            c.exchange.fromTarget.start = 0
            c.exchange.fromTarget.end = 0
            c.exchange.responseParser.reset()
            counters.retries &+= 1
            connectUpstream(c)
        case .abandonConnect:
            upstreamConnectFailed(c, timedOut: true)
        case .answer(let status):
            releaseUpstream(c, reusable: false)
            c.exchange.fromTarget.start = c.exchange.fromTarget.end
            writeAnswer(c, status: status)
        case .finish(let reuseTarget, let keepAlive):
            finishExchange(c, reuseTarget: reuseTarget, keepAlive: keepAlive)
        case .linger:
            startLingering(c)
        case .close:
            releaseUpstream(c, reusable: false)
            closeHTTP(c)
        }
    }

    private func finishExchange(_ c: HTTPConnection, reuseTarget: Bool, keepAlive: Bool) {
        releaseUpstream(c, reusable: reuseTarget)
        if let b = c.exchange.fromTarget.base {
            httpBuffers.release(b)
            c.exchange.fromTarget = ByteQueue()
        }
        if let b = c.exchange.toTarget.base {
            httpBuffers.release(b)
            c.exchange.toTarget = ByteQueue()
        }
        if !keepAlive {
            closeHTTP(c)
            return
        }
        beginNextRequest(c)
    }
}

extension Plan.ListenerPlan {
    /// The listener's settings as the exchange machine wants them.
    var exchangePolicy: HTTP1Exchange.Policy {
        let mode: HTTP1Exchange.DesyncMode
        switch desyncMode {
        case .monitor: mode = .monitor
        case .defensive: mode = .defensive
        case .strictest: mode = .strictest
        }
        return HTTP1Exchange.Policy(idleTimeout: idleTimeout, headerTimeout: headerTimeout,
                                    connectTimeout: connectTimeout, responseTimeout: responseTimeout,
                                    maxRequestBody: maxRequestBody, retryIdempotent: retryIdempotent,
                                    desyncMode: mode)
    }
}
