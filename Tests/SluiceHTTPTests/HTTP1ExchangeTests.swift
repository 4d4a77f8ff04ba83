import Testing
@testable import SluiceHTTP

private let policy = HTTP1Exchange.Policy(idleTimeout: 60, headerTimeout: 10, connectTimeout: 5, responseTimeout: 30,
                                          maxRequestBody: 1000, retryIdempotent: true, desyncMode: .defensive)

/// An exchange admitted and forwarded at time 100, its target connected.
private func connected(method: HTTPMethod = .get, framing: BodyFraming = .none, keepAlive: Bool = true,
                       verdict: DesyncVerdict = DesyncVerdict(), policy p: HTTP1Exchange.Policy = policy) -> HTTP1Exchange {
    var x = HTTP1Exchange()
    x.headStarted(now: 90)
    #expect(x.admit(method: method, framing: framing, keepAlive: keepAlive, verdict: verdict, rejectStatus: 0,
                    policy: p) == .route)
    #expect(x.forward(now: 100) == .connect)
    x.targetPicked()
    x.targetConnected()
    return x
}

@Suite("HTTP1Exchange")
struct HTTP1ExchangeTests {
    // MARK: heads

    @Test func idleTimesOutSilently() {
        var x = HTTP1Exchange()
        #expect(x.deadline(policy: policy, lastActivity: 1000) == 1060)
        #expect(x.timerFired(now: 1059, policy: policy, lastActivity: 1000) == .none)
        #expect(x.timerFired(now: 1060, policy: policy, lastActivity: 1000) == .close)
        #expect(!x.hasRecord)
    }

    @Test func headerTimeoutAnswers408FromTheFirstByte() {
        var x = HTTP1Exchange()
        x.headStarted(now: 500)
        x.headStarted(now: 505)  // more bytes: the clock does not restart
        #expect(x.state == .receivingHead)
        #expect(x.deadline(policy: policy, lastActivity: 505) == 510)
        #expect(x.timerFired(now: 510, policy: policy, lastActivity: 505) == .answer(status: 408))
        #expect(x.state == .answering(.error))
        #expect(x.hasRecord)
        #expect(x.answerWritten() == .linger)
        #expect(x.state == .done(keepAlive: false))
        x.recordWritten()
        #expect(x.state == .closed && !x.hasRecord)
    }

    @Test func badHeadAnswersAndLingers() {
        var x = HTTP1Exchange()
        x.headStarted(now: 1)
        #expect(x.headFailed(status: 431) == .answer(status: 431))
        #expect(x.answerWritten() == .linger)
    }

    // MARK: admission and desync modes

    @Test(arguments: [
        (HTTP1Exchange.DesyncMode.monitor, DesyncClass.severe, 0),
        (.monitor, .ambiguous, 0),
        (.defensive, .severe, 400),
        (.defensive, .ambiguous, 0),
        (.defensive, .acceptable, 0),
        (.strictest, .acceptable, 400),
        (.strictest, .compliant, 0),
    ])
    func desyncModes(_ mode: HTTP1Exchange.DesyncMode, _ klass: DesyncClass, _ rejected: Int) {
        var p = policy
        p.desyncMode = mode
        var x = HTTP1Exchange()
        x.headStarted(now: 1)
        let a = x.admit(method: .get, framing: .none, keepAlive: true, verdict: DesyncVerdict(klass: klass),
                        rejectStatus: 0, policy: p)
        #expect(a == (rejected == 0 ? .route : .reject(status: rejected)))
        if rejected != 0 { #expect(x.state == .answering(.error)) }
    }

    @Test func parserRejectStatusIsKeptAnd501IsNeverForwarded() {
        var x = HTTP1Exchange()
        #expect(x.admit(method: .post, framing: .none, keepAlive: true, verdict: DesyncVerdict(klass: .severe),
                        rejectStatus: 505, policy: policy) == .reject(status: 505))
        var p = policy
        p.desyncMode = .monitor
        var y = HTTP1Exchange()
        #expect(y.admit(method: .post, framing: .none, keepAlive: true, verdict: DesyncVerdict(),
                        rejectStatus: 501, policy: p) == .reject(status: 501))
    }

    @Test func ambiguousInDefensiveClosesBothSidesAfterTheExchange() {
        var x = connected(verdict: DesyncVerdict(klass: .ambiguous))
        #expect(!x.keepAlive && !x.reuseTarget)
        x.requestSent()
        #expect(x.responseHead(status: 200, framing: .contentLength(2), keepAlive: true)
                == .forwardHead(framing: .contentLength(2), close: true))
        x.responseBodyDone()
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: false, keepAlive: false))
    }

    @Test func ambiguousInMonitorKeepsBothSides() {
        var p = policy
        p.desyncMode = .monitor
        var x = connected(verdict: DesyncVerdict(klass: .ambiguous), policy: p)
        x.requestSent()
        #expect(x.responseHead(status: 200, framing: .none, keepAlive: true) == .forwardHead(framing: .none, close: false))
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: true, keepAlive: true))
    }

    @Test func bodyOverTheLimitIs413() {
        var x = HTTP1Exchange()
        #expect(x.admit(method: .post, framing: .contentLength(1001), keepAlive: true, verdict: DesyncVerdict(),
                        rejectStatus: 0, policy: policy) == .reject(status: 413))
        var y = HTTP1Exchange()
        #expect(y.admit(method: .post, framing: .contentLength(1000), keepAlive: true, verdict: DesyncVerdict(),
                        rejectStatus: 0, policy: policy) == .route)
    }

    @Test func ruleAnswersCloseWhenABodyIsUnreadOrTheClientSaidSo() {
        var x = HTTP1Exchange()
        _ = x.admit(method: .get, framing: .none, keepAlive: true, verdict: DesyncVerdict(), rejectStatus: 0, policy: policy)
        #expect(x.answerFromRule() == false)
        #expect(x.answerWritten() == .finish(reuseTarget: false, keepAlive: true))
        var y = HTTP1Exchange()
        _ = y.admit(method: .post, framing: .chunked, keepAlive: true, verdict: DesyncVerdict(), rejectStatus: 0, policy: policy)
        #expect(y.answerFromRule() == true)
        #expect(y.answerWritten() == .finish(reuseTarget: false, keepAlive: false))
        var z = HTTP1Exchange()
        _ = z.admit(method: .get, framing: .none, keepAlive: false, verdict: DesyncVerdict(), rejectStatus: 0, policy: policy)
        #expect(z.answerFromRule() == true)
    }

    // MARK: connecting

    @Test func connectRetriesTwiceMoreThen502() {
        var x = HTTP1Exchange()
        _ = x.admit(method: .post, framing: .none, keepAlive: true, verdict: DesyncVerdict(), rejectStatus: 0, policy: policy)
        #expect(x.forward(now: 100) == .connect)
        for attempt in 1...3 {
            #expect(x.mayAttempt)
            x.targetPicked()
            #expect(x.state == .connecting(attempt: attempt, deadline: 0))
            x.connectPending(now: 100, policy: policy)
            #expect(x.deadline(policy: policy, lastActivity: 0) == 105)
            let a = x.connectFailed(timedOut: false)
            #expect(a == (attempt < 3 ? .connect : .answer(status: 502)))
        }
        #expect(x.state == .answering(.error))
    }

    @Test func connectTimeoutAbandonsThenAnswers504() {
        var x = HTTP1Exchange()
        _ = x.forward(now: 100)
        for _ in 1...3 {
            x.targetPicked()
            x.connectPending(now: 100, policy: policy)
            #expect(x.timerFired(now: 104, policy: policy, lastActivity: 0) == .none)
            #expect(x.timerFired(now: 105, policy: policy, lastActivity: 0) == .abandonConnect)
            _ = x.connectFailed(timedOut: true)
        }
        #expect(x.state == .answering(.error))
        var y = HTTP1Exchange()
        _ = y.forward(now: 100)
        y.targetPicked()
        #expect(y.connectFailed(timedOut: true) == .connect)
        #expect(y.noTargetLeft() == .answer(status: 504))
    }

    @Test func noTargetAtAllIs503() {
        var x = HTTP1Exchange()
        _ = x.forward(now: 1)
        #expect(x.noTargetLeft() == .answer(status: 503))
    }

    // MARK: retries

    @Test func idempotentBodilessRequestIsReplayedBeforeAnyResponseByte() {
        var x = connected()
        x.requestSent()
        #expect(x.targetFailed(policy: policy) == .retry)
        #expect(x.state == .connecting(attempt: 1, deadline: 0))
        x.targetPicked()
        x.targetConnected()
        #expect(x.targetClosed(bodyUntilClose: false, policy: policy) == .retry)
        x.targetPicked()
        x.targetConnected()
        #expect(x.targetFailed(policy: policy) == .answer(status: 502))  // three targets tried
    }

    @Test(arguments: [(HTTPMethod.post, BodyFraming.none, true), (.get, .contentLength(3), true), (.get, .none, false)])
    func noReplay(_ method: HTTPMethod, _ framing: BodyFraming, _ retry: Bool) {
        var p = policy
        p.retryIdempotent = retry
        var x = connected(method: method, framing: framing, policy: p)
        #expect(x.targetFailed(policy: p) == .answer(status: 502))
    }

    @Test func noReplayOnceAResponseByteCame() {
        var x = connected()
        #expect(x.responseHead(status: 100, framing: .none, keepAlive: true) == .forwardInformational)
        #expect(x.responseBegan)
        #expect(x.targetFailed(policy: policy) == .close)
        #expect(x.state == .failed && x.hasRecord)
    }

    // MARK: responses

    @Test func continueThenFinalHead() {
        var x = connected(method: .post, framing: .contentLength(3))
        #expect(x.responseHead(status: 100, framing: .none, keepAlive: true) == .forwardInformational)
        #expect(x.state == .exchanging(.sending, .informational))
        #expect(x.deadline(policy: policy, lastActivity: 0) == 130)  // still the response timeout
        x.requestSent()
        #expect(x.responseHead(status: 201, framing: .contentLength(0), keepAlive: true)
                == .forwardHead(framing: .contentLength(0), close: false))
        x.responseBodyDone()
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: true, keepAlive: true))
        #expect(x.state == .done(keepAlive: true))
    }

    @Test func responseTimeoutIs504BeforeTheHeadAndIdleAfter() {
        var x = connected()
        #expect(x.deadline(policy: policy, lastActivity: 0) == 130)
        #expect(x.timerFired(now: 130, policy: policy, lastActivity: 0) == .answer(status: 504))
        var y = connected()
        _ = y.responseHead(status: 200, framing: .chunked, keepAlive: true)
        #expect(y.deadline(policy: policy, lastActivity: 200) == 260)
        #expect(y.timerFired(now: 260, policy: policy, lastActivity: 200) == .close)
    }

    @Test(arguments: [(HTTPMethod.head, 200), (.get, 204), (.get, 304)])
    func noBodyFollows(_ method: HTTPMethod, _ status: Int) {
        var x = connected(method: method)
        x.requestSent()
        #expect(x.responseHead(status: status, framing: .contentLength(10), keepAlive: true)
                == .forwardHead(framing: .none, close: false))
        #expect(x.state == .exchanging(.sent, .complete))
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: true, keepAlive: true))
    }

    @Test func bodyUntilCloseEndsWithTheTargetAndClosesBoth() {
        var x = connected()
        x.requestSent()
        #expect(x.responseHead(status: 200, framing: .untilClose, keepAlive: false)
                == .forwardHead(framing: .untilClose, close: true))
        #expect(x.targetClosed(bodyUntilClose: true, policy: policy) == .none)
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: false, keepAlive: false))
    }

    @Test func truncatedBodyCloses() {
        var x = connected()
        _ = x.responseHead(status: 200, framing: .contentLength(10), keepAlive: true)
        #expect(x.targetClosed(bodyUntilClose: false, policy: policy) == .close)
    }

    @Test func targetCloseHeaderOrLeftoversStopReuse() {
        var x = connected()
        x.requestSent()
        _ = x.responseHead(status: 200, framing: .none, keepAlive: false)
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: false, keepAlive: true))
        var y = connected()
        y.requestSent()
        _ = y.responseHead(status: 200, framing: .none, keepAlive: true)
        #expect(y.complete(leftovers: true) == .finish(reuseTarget: false, keepAlive: true))
    }

    @Test func clientCloseOrNoKeepAliveClosesAfterTheResponse() {
        var x = connected(keepAlive: false)
        x.requestSent()
        #expect(x.responseHead(status: 200, framing: .none, keepAlive: true) == .forwardHead(framing: .none, close: true))
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: true, keepAlive: false))
    }

    @Test func completesOnlyWhenTheRequestIsOut() {
        var x = connected(method: .post, framing: .contentLength(5))
        _ = x.responseHead(status: 413, framing: .none, keepAlive: true)
        #expect(x.complete(leftovers: false) == .none)
        x.requestSent()
        #expect(x.complete(leftovers: false) == .finish(reuseTarget: true, keepAlive: true))
    }

    @Test func badResponseHeadIs502() {
        var x = connected()
        #expect(x.badResponse() == .answer(status: 502))
        #expect(x.answerWritten() == .linger)
    }

    // MARK: tunnels and aborts

    @Test func upgradeBecomesATunnel() {
        var x = connected()
        x.requestSent()
        #expect(x.responseHead(status: 101, framing: .none, keepAlive: true) == .startTunnel)
        #expect(x.state == .tunnel && !x.reuseTarget && x.responseBegan)
        #expect(x.deadline(policy: policy, lastActivity: 300) == 360)
        #expect(x.timerFired(now: 360, policy: policy, lastActivity: 300) == .close)
    }

    @Test func clientAbortMidRequest() {
        var x = connected(method: .post, framing: .chunked)
        #expect(x.abort() == .close)
        #expect(x.state == .failed && x.hasRecord)
        var y = HTTP1Exchange()
        #expect(y.abort() == .close)
        #expect(!y.hasRecord)
    }

    /// A broken chunked request body is the client's fault: 400 (never a 502, never a replay
    /// even when the request could be retried), the target connection not reused, the client
    /// connection closed after the answer.
    @Test(arguments: [HTTP1Exchange.DesyncMode.monitor, .defensive, .strictest])
    func invalidRequestBodyIs400NotATargetFailure(_ mode: HTTP1Exchange.DesyncMode) {
        var p = policy
        p.desyncMode = mode
        var x = connected(method: .put, framing: .chunked, policy: p)
        #expect(x.requestBodyInvalid() == .answer(status: 400))
        #expect(x.state == .answering(.error) && !x.keepAlive && !x.reuseTarget)
        #expect(x.answerWritten() == .linger)
        // Found before any target was contacted (the body came with the head).
        var y = HTTP1Exchange()
        y.headStarted(now: 90)
        #expect(y.admit(method: .post, framing: .chunked, keepAlive: true, verdict: DesyncVerdict(), rejectStatus: 0,
                        policy: p) == .route)
        #expect(y.requestBodyInvalid() == .answer(status: 400))
        #expect(y.attempts == 0 && y.hasRecord)
    }

    @Test func invalidRequestBodyAfterTheResponseBeganCloses() {
        var x = connected(method: .post, framing: .chunked)
        #expect(x.responseHead(status: 200, framing: .contentLength(5), keepAlive: true) == .forwardHead(framing: .contentLength(5), close: false))
        #expect(x.requestBodyInvalid() == .close)
        #expect(x.state == .failed && x.hasRecord && !x.reuseTarget && !x.keepAlive)
    }

    @Test func resetStartsTheNextRequest() {
        var x = connected()
        x.requestSent()
        _ = x.responseHead(status: 200, framing: .none, keepAlive: true)
        _ = x.complete(leftovers: false)
        x.recordWritten()
        x.reset()
        #expect(x.state == .idle && x.requestStarted == 0 && x.attempts == 0)
    }
}
