/// One HTTP/1 request/response exchange as a sans-I/O state machine: the proxy reports what
/// happened (events, each with the injected clock where time matters) and performs the
/// actions returned. No sockets, no buffers: the I/O layer owns bytes, this owns decisions —
/// admission (desync mode, body limit), connect attempts and retries, the response's framing
/// and keep-alive on both sides, timeouts, and how the exchange ends.
///
/// Life of an exchange:
///
///     idle ─first byte─► receivingHead ─admit/forward─► connecting ─► exchanging(req, resp) ─► done
///                              │                          ▲     │              │  │
///                              │                          └retry┘              │  └101─► tunnel
///                              └─reject / rule answer─► answering ─────────────┴──────────► done
///
/// `done`, `failed` and `closed` wait for the I/O layer: it writes the log record
/// (`recordWritten()`), then starts the next exchange (`reset`) or closes the session.
public struct HTTP1Exchange: Sendable {
    /// Desync mitigation of the listener (mirrors the configuration's mode).
    public enum DesyncMode: UInt8, Sendable {
        /// Forward everything; classify only.
        case monitor
        /// Reject severe requests; forward ambiguous ones, then close both connections.
        case defensive
        /// Reject anything not compliant.
        case strictest
    }

    /// The listener's rules for exchanges; copied per event, never stored per request.
    public struct Policy: Sendable, Equatable {
        /// Keep-alive idle time, and idle time within a response or tunnel.
        public var idleTimeout: UInt64
        /// From the first byte of a request head to its end.
        public var headerTimeout: UInt64
        /// One connect attempt.
        public var connectTimeout: UInt64
        /// From forwarding the request to the response head.
        public var responseTimeout: UInt64
        /// Largest request body (0: unlimited).
        public var maxRequestBody: UInt64
        /// Replay an idempotent, bodiless request on another target when the first failed
        /// before any response byte.
        public var retryIdempotent: Bool
        public var desyncMode: DesyncMode

        public init(idleTimeout: UInt64, headerTimeout: UInt64, connectTimeout: UInt64, responseTimeout: UInt64,
                    maxRequestBody: UInt64 = 0, retryIdempotent: Bool = false, desyncMode: DesyncMode = .defensive) {
            self.idleTimeout = idleTimeout
            self.headerTimeout = headerTimeout
            self.connectTimeout = connectTimeout
            self.responseTimeout = responseTimeout
            self.maxRequestBody = maxRequestBody
            self.retryIdempotent = retryIdempotent
            self.desyncMode = desyncMode
        }
    }

    /// Targets tried for one request at most: the first and two more.
    public static let maxConnectAttempts = 3

    /// The request's way to the target.
    public enum RequestPhase: UInt8, Sendable {
        /// Head or body bytes are still going out.
        case sending
        /// All of it is out.
        case sent
    }

    /// The response's way back; runs alongside the request (a target may answer early).
    public enum ResponsePhase: UInt8, Sendable {
        /// Nothing received: the request may still be replayed.
        case awaitingHead
        /// A 1xx (not 101) was passed on; the final head is still to come.
        case informational
        /// The final head was passed on; body bytes follow.
        case streaming
        /// The body ended (or there was none).
        case complete
    }

    /// Why a response is Sluice's own.
    public enum Answer: Sendable, Equatable {
        /// An error answer (4xx/5xx). The connection closes after it, lingering for a moment
        /// so the answer is not lost to a reset.
        case error
        /// A rule's fixed response or redirect; `close` after it, or read the next request.
        case rule(close: Bool)
    }

    public enum State: Sendable, Equatable {
        /// Between requests: waiting for the first byte of the next head.
        case idle
        /// A request head is arriving (since `requestStarted`).
        case receivingHead
        /// The head is complete and admitted; the I/O layer routes it (rules).
        case routing
        /// Waiting for a target connection: attempt `attempt` (1-based) until `deadline`.
        case connecting(attempt: Int, deadline: UInt64)
        /// A target connection carries the request and its response.
        case exchanging(RequestPhase, ResponsePhase)
        /// After a 101: bytes both ways until either side closes.
        case tunnel
        /// Writing Sluice's own response.
        case answering(Answer)
        /// The exchange ended well; `keepAlive`: the session reads the next request.
        case done(keepAlive: Bool)
        /// The exchange was cut short (client or target gone mid-message, timeout): the
        /// session closes without an answer.
        case failed
        /// Accounted for (logged); the session is closing or lingering.
        case closed
    }

    /// What the I/O layer does next.
    public enum Action: Sendable, Equatable {
        /// Nothing; wait for the next event.
        case none
        /// Pick a target not tried yet for this request and connect (or take a pooled one).
        case connect
        /// Drop the target connection (not reusable), rewind the request and connect again.
        case retry
        /// The connect attempt in progress ran out of time: give up on that connection and
        /// report `connectFailed(timedOut: true)`.
        case abandonConnect
        /// Drop any target connection and what came from it; write Sluice's answer with
        /// this status (`Connection: close`).
        case answer(status: Int)
        /// Pass a 1xx head on unchanged.
        case forwardInformational
        /// Rewrite and pass on the final head; `close`: with `Connection: close`, and the
        /// session closes after the body. The body follows `framing`.
        case forwardHead(framing: BodyFraming, close: Bool)
        /// Pass the 101 head on; from now on bytes flow both ways unparsed.
        case startTunnel
        /// Release the target (to the pool if `reuseTarget`); then the next request if
        /// `keepAlive`, else close the session.
        case finish(reuseTarget: Bool, keepAlive: Bool)
        /// Shut our sending side, read and drop for a moment, then close (after an error answer).
        case linger
        /// Close the target connection (if any) and the session, no answer.
        case close
    }

    /// What admission decided about a complete request head.
    public enum Admission: Sendable, Equatable {
        /// Route it (rules), then `forward` or `answerFromRule`.
        case route
        /// Answer this error status and close.
        case reject(status: Int)
    }

    public private(set) var state = State.idle
    /// When the current request's first byte arrived (0: none yet).
    public private(set) var requestStarted: UInt64 = 0
    /// When the request was handed to the target side (the response timeout runs from here).
    public private(set) var forwardedAt: UInt64 = 0
    public private(set) var method = HTTPMethod.get
    /// The request's body framing.
    public private(set) var requestFraming = BodyFraming.none
    /// The session reads another request after this exchange.
    public private(set) var keepAlive = true
    /// The target connection may carry another request after this exchange.
    public private(set) var reuseTarget = true
    /// Targets picked for this request (pooled or new).
    public private(set) var attempts = 0
    /// Connect attempts that ran out of time (504 rather than 502 when none is left).
    public private(set) var timedOutConnects = 0

    public init() {}

    /// Whether a log record is owed for this exchange: a request was read (or rejected).
    @inline(__always)
    public var hasRecord: Bool {
        switch state {
        case .idle, .receivingHead, .closed: false
        case .routing, .connecting, .exchanging, .tunnel, .answering, .done, .failed: true
        }
    }

    /// Whether the response began reaching the client (no replay, no own answer after this).
    @inline(__always)
    public var responseBegan: Bool {
        switch state {
        case .exchanging(_, let r): r != .awaitingHead
        case .tunnel: true
        default: false
        }
    }

    /// Ready for the next request on the same session.
    public mutating func reset() {
        state = .idle
        requestStarted = 0
        forwardedAt = 0
        attempts = 0
        timedOutConnects = 0
    }

    // MARK: request head

    /// The first byte of a request head arrived.
    public mutating func headStarted(now: UInt64) {
        guard state == .idle else { return }
        state = .receivingHead
        requestStarted = now
    }

    /// The request head could not be read (parse error, too large, header timeout).
    public mutating func headFailed(status: Int) -> Action {
        if requestStarted == 0 { return .close }
        state = .answering(.error)
        keepAlive = false
        return .answer(status: status)
    }

    /// A complete request head: desync mitigation, the listener's body limit.
    /// `rejectStatus`: the parser's status for a rejected head (0: 400); 501 (a coding
    /// Sluice cannot frame) is never forwarded, whatever the mode.
    public mutating func admit(method: HTTPMethod, framing: BodyFraming, keepAlive clientKeepAlive: Bool,
                               verdict: DesyncVerdict, rejectStatus: Int, policy: Policy) -> Admission {
        self.method = method
        requestFraming = framing
        let reject = rejectStatus != 0 ? rejectStatus : 400
        if rejectStatus == 501 { return refuse(501) }
        switch policy.desyncMode {
        case .monitor: break
        case .defensive: if verdict.klass == .severe { return refuse(reject) }
        case .strictest: if verdict.klass != .compliant { return refuse(reject) }
        }
        keepAlive = clientKeepAlive
        reuseTarget = true
        if verdict.klass == .ambiguous && policy.desyncMode == .defensive {
            // ALB's defensive mode: forward, then close both connections.
            keepAlive = false
            reuseTarget = false
        }
        if policy.maxRequestBody > 0, case .contentLength(let n) = framing, n > policy.maxRequestBody {
            return refuse(413)
        }
        state = .routing
        return .route
    }

    private mutating func refuse(_ status: Int) -> Admission {
        state = .answering(.error)
        keepAlive = false
        return .reject(status: status)
    }

    /// A rule answers the request itself. A request body is not read, so a request with one
    /// closes the session after the answer. Returns whether the answer says `close`.
    public mutating func answerFromRule() -> Bool {
        if requestFraming != .none { keepAlive = false }
        state = .answering(.rule(close: !keepAlive))
        return !keepAlive
    }

    /// Sluice answers with an error status from any state before the response began (no
    /// target left, the listener gone, the head too large to rewrite, a bad response head).
    public mutating func fail(status: Int) -> Action {
        state = .answering(.error)
        keepAlive = false
        reuseTarget = false
        return .answer(status: status)
    }

    /// The request goes to the target side.
    public mutating func forward(now: UInt64) -> Action {
        forwardedAt = now
        attempts = 0
        timedOutConnects = 0
        state = .connecting(attempt: 0, deadline: 0)
        return .connect
    }

    // MARK: connecting

    /// Whether another target may be picked for this request.
    @inline(__always)
    public var mayAttempt: Bool { attempts < HTTP1Exchange.maxConnectAttempts }

    /// A target was picked (pooled or about to connect).
    public mutating func targetPicked() {
        attempts += 1
        state = .connecting(attempt: attempts, deadline: 0)
    }

    /// A new connection is in progress; it has `connectTimeout` to finish.
    public mutating func connectPending(now: UInt64, policy: Policy) {
        guard case .connecting(let a, _) = state else { return }
        state = .connecting(attempt: a, deadline: now &+ policy.connectTimeout)
    }

    /// The picked target's connection is usable (pooled, or the connect finished).
    public mutating func targetConnected() {
        state = .exchanging(.sending, .awaitingHead)
    }

    /// The connect failed (refused, unreachable, or `timedOut`): another target, or an answer.
    public mutating func connectFailed(timedOut: Bool) -> Action {
        if timedOut { timedOutConnects += 1 }
        guard mayAttempt else { return noTargetLeft() }
        state = .connecting(attempt: attempts, deadline: 0)
        return .connect
    }

    /// No target could be picked: 503 when none was tried (none listed, all draining or at
    /// weight 0); else 504 if a connect timed out, 502 otherwise.
    public mutating func noTargetLeft() -> Action {
        fail(status: attempts == 0 ? 503 : (timedOutConnects > 0 ? 504 : 502))
    }

    // MARK: exchanging

    /// The request head and all of its body are with the target.
    public mutating func requestSent() {
        if case .exchanging(_, let r) = state { state = .exchanging(.sent, r) }
    }

    /// A complete response head. `framing` is the head's own; the machine applies the rules
    /// that no body follows a HEAD request, a 1xx, 204 or 304.
    /// A 101 turns the exchange into a tunnel.
    public mutating func responseHead(status: Int, framing: BodyFraming, keepAlive targetKeepAlive: Bool) -> Action {
        guard case .exchanging(let q, _) = state else { return .none }
        if status == 101 {
            reuseTarget = false
            state = .tunnel
            return .startTunnel
        }
        if status < 200 {
            // 100 Continue and friends pass on as they are; the real head follows.
            state = .exchanging(q, .informational)
            return .forwardInformational
        }
        if !targetKeepAlive { reuseTarget = false }
        let body = HTTP1Exchange.responseFraming(status: status, requestMethod: method, declared: framing)
        if body == .untilClose {
            keepAlive = false
            reuseTarget = false
        }
        state = .exchanging(q, body == .none ? .complete : .streaming)
        return .forwardHead(framing: body, close: !keepAlive)
    }

    /// The body framing a response has (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304.
    public static func responseFraming(status: Int, requestMethod: HTTPMethod, declared: BodyFraming) -> BodyFraming {
        if requestMethod == .head || status < 200 || status == 204 || status == 304 { return .none }
        return declared
    }

    /// The response body was passed on completely.
    public mutating func responseBodyDone() {
        if case .exchanging(let q, .streaming) = state { state = .exchanging(q, .complete) }
    }

    /// Everything is out both ways and the client's queue is empty: the exchange ends.
    /// `leftovers`: the target sent bytes beyond the response (its connection is not reused).
    public mutating func complete(leftovers: Bool) -> Action {
        guard state == .exchanging(.sent, .complete) else { return .none }
        let reuse = reuseTarget && !leftovers
        state = .done(keepAlive: keepAlive)
        return .finish(reuseTarget: reuse, keepAlive: keepAlive)
    }

    /// The target closed its side. A body delimited by the close ends there (and neither
    /// connection is reused); anything else is a failure.
    public mutating func targetClosed(bodyUntilClose: Bool, policy: Policy) -> Action {
        if bodyUntilClose, case .exchanging(let q, .streaming) = state {
            keepAlive = false
            reuseTarget = false
            state = .exchanging(q, .complete)
            return .none
        }
        return targetFailed(policy: policy)
    }

    /// Writing to or reading from the target failed, or it closed early. After any response
    /// byte: close (a truncated response must not pass as whole). Before: a replay on another
    /// target when `retry_idempotent` allows it (idempotent method, no body, tries left), else 502.
    public mutating func targetFailed(policy p: Policy) -> Action {
        if responseBegan {
            state = .failed
            return .close
        }
        guard case .exchanging = state else { return .none }
        if p.retryIdempotent, method.isIdempotent, requestFraming == .none, mayAttempt {
            state = .connecting(attempt: attempts, deadline: 0)
            return .retry
        }
        return fail(status: 502)
    }

    /// The client's chunked request body broke its framing (an invalid chunk size, no CRLF
    /// after chunk data, ...), before or after the head went to a target: the client's
    /// fault, whatever the desync mode (the body's end is lost, so nothing more can be
    /// forwarded). Before any response byte: 400 (the target connection, which may hold part
    /// of the body, is dropped, never reused); after: close both sides.
    public mutating func requestBodyInvalid() -> Action {
        if responseBegan {
            state = .failed
            keepAlive = false
            reuseTarget = false
            return .close
        }
        return fail(status: 400)
    }

    /// The target's response cannot be framed or rewritten: 502 (the target is dropped).
    public mutating func badResponse() -> Action { fail(status: 502) }

    /// The client went away, or broke its request body (bad chunk, over the limit): close
    /// both sides, no answer.
    public mutating func abort() -> Action {
        state = hasRecord ? .failed : .closed
        return .close
    }

    // MARK: answers

    /// Sluice's own response is written out.
    public mutating func answerWritten() -> Action {
        guard case .answering(let a) = state else { return .none }
        switch a {
        case .error:
            state = .done(keepAlive: false)
            return .linger
        case .rule(let close):
            state = .done(keepAlive: !close)
            return .finish(reuseTarget: false, keepAlive: !close)
        }
    }

    /// The log record was written; nothing more is owed for this exchange.
    public mutating func recordWritten() {
        if hasRecord { state = .closed }
    }

    // MARK: time

    /// When the current wait runs out: `lastActivity` is the session's last byte moved.
    public func deadline(policy: Policy, lastActivity: UInt64) -> UInt64 {
        switch state {
        case .idle: return lastActivity &+ policy.idleTimeout
        case .receivingHead: return requestStarted &+ policy.headerTimeout
        case .routing: return .max
        case .connecting(_, let deadline):
            // Between a pick and its outcome (no connect pending): the response timeout.
            return deadline != 0 ? deadline : forwardedAt &+ policy.responseTimeout
        case .exchanging(_, .awaitingHead), .exchanging(_, .informational):
            return forwardedAt &+ policy.responseTimeout
        case .exchanging, .tunnel, .answering: return lastActivity &+ policy.idleTimeout
        case .done, .failed, .closed: return .max
        }
    }

    /// The timer fired at `now`: what ran out, and what to do about it (`.none`: not yet).
    public mutating func timerFired(now: UInt64, policy: Policy, lastActivity: UInt64) -> Action {
        guard now >= deadline(policy: policy, lastActivity: lastActivity) else { return .none }
        switch state {
        case .idle:
            state = .closed
            return .close  // keep-alive idle
        case .receivingHead:
            return headFailed(status: 408)
        case .connecting:
            return .abandonConnect
        case .exchanging(_, .awaitingHead), .exchanging(_, .informational):
            return fail(status: 504)
        case .exchanging, .tunnel, .answering:
            state = .failed
            return .close
        case .routing, .done, .failed, .closed:
            return .none
        }
    }
}
