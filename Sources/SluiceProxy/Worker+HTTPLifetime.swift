import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// Closing an HTTP connection (client side, its exchange, upstream and stream pipe) and its
/// timers: which deadline applies now, and what happens when it passes.
extension Worker {
    func closeHTTP(_ c: HTTPConnection) {
        guard c.state != .free else { return }
        logRequest(c)
        let statsId = plan(of: c).listeners[c.listener].statsId
        let isStream = c.streamPipe != nil
        if statsId >= 0 && !isStream { stats.add(StatsBlock.listenerSlot(statsId, StatsBlock.connClosed)) }
        leaveQueue(c)  // a client that leaves while queued is dropped from the queue
        releaseHeld(c)
        c.exchange.surgeSince = 0
        c.exchange.surgeTurn = false
        releaseUpstream(c, reusable: false)
        if case .tls(let s) = c.transport { s.shutdown() }  // close_notify, best effort
        c.transport = .plain
        if let fd = c.client?.raw {
            fds.unregister(fd)
            c.client = nil  // closes
        }
        if let pipe = c.streamPipe {
            c.streamPipe = nil
            streamSessionClosed(c, pipe)
        }
        for q in [c.input, c.toClient, c.exchange.toTarget, c.exchange.fromTarget] {
            if let b = q.base { httpBuffers.release(b) }
        }
        c.input = ByteQueue()
        c.toClient = ByteQueue()
        c.exchange.toTarget = ByteQueue()
        c.exchange.fromTarget = ByteQueue()
        c.exchange.machine.reset()
        c.state = .free
        c.plan = nil
        c.generation &+= 1
        freeHTTPSlots.append(c.slot)
        if !isStream {
            activeLocal -= 1
            _ = process.activeConnections.subtract(1, ordering: .relaxed)
        }
    }

    /// When the connection's current wait runs out.
    func httpDeadline(_ c: HTTPConnection) -> UInt64 {
        switch c.state {
        case .free:
            return .max
        case .preamble:
            return c.preambleDeadline
        case .handshaking:
            return c.handshakeDeadline
        case .open:
            if c.exchange.surgeQueued { return c.exchange.surgeDeadline }
            return c.exchange.machine.deadline(policy: policy(of: c), lastActivity: c.lastActivity)
        case .lingering:
            return c.lastActivity &+ Worker.lingerNanos
        }
    }

    func armHTTPTimer(_ c: HTTPConnection) {
        let d = httpDeadline(c)
        guard d != .max, c.timerAt == 0 || d < c.timerAt else { return }
        c.timerAt = d
        wheel.schedule(TimerToken(kind: .http, slot: c.slot, generation: c.generation).raw, at: d)
    }

    func httpTimerFired(_ c: HTTPConnection) {
        if c.timerAt <= now { c.timerAt = 0 }
        let d = httpDeadline(c)
        guard now >= d else {
            armHTTPTimer(c)
            return
        }
        switch c.state {
        case .free:
            return
        case .lingering:
            closeHTTP(c)
        case .preamble:
            countProxyHeader(StatsBlock.proxyTimeout, statsId: plan(of: c).listeners[c.listener].statsId)
            closeHTTP(c)
        case .handshaking:
            countHandshakeFailure(.timeout, statsId: plan(of: c).listeners[c.listener].statsId)
            closeHTTP(c)
        case .open:
            if c.exchange.surgeQueued {
                surgeTimedOut(c)
                return
            }
            let readingHead = c.exchange.machine.state == .receivingHead
            let next = c.exchange.machine.timerFired(now: now, policy: policy(of: c), lastActivity: c.lastActivity)
            if readingHead, case .answer = next { captureRejectedForLog(c) }  // 408
            perform(c, next)
            drive(c)
        }
    }
}
