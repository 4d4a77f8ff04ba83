import SluiceCore

/// The worker's timer wheel: entries are `TimerToken`s (kind, slot, generation); a token
/// for a slot that has since been reused (another generation) or freed is ignored.
extension Worker {
    func fireTimers() {
        for raw in fired {
            guard let token = TimerToken(raw: raw) else {
                assertionFailure("timer token of an unknown kind")
                continue
            }
            switch token.kind {
            case .tcp:
                let c = conns[Int(token.slot)]
                if c.generation == token.generation, c.state != .free { tcpTimerFired(c) }
            case .http:
                let c = httpConns[Int(token.slot)]
                if c.generation == token.generation, c.state != .free { httpTimerFired(c) }
            case .h2:
                h2TimerFired(slot: token.slot, generation: token.generation)
            case .h2Upstream:
                h2UpstreamTimerFired(slot: token.slot, generation: token.generation)
            case .udp:
                udpTimerFired(slot: token.slot, generation: token.generation)
            }
        }
        fired.removeAll(keepingCapacity: true)
    }

    private func tcpTimerFired(_ c: TCPConnection) {
        if c.timerAt <= now { c.timerAt = 0 }
        if now < c.nextDeadline {
            armTimer(c)  // no-op while a later entry is still pending
        } else if c.state == .connecting {
            connectFailed(c)
        } else if c.state == .queued {
            surgeTimedOut(c)
        } else {
            c.end = .idleTimeout  // (close() names a preamble or handshake that took too long)
            close(c)  // idle timeout (or a preamble that took too long)
        }
    }

    /// Makes sure a wheel entry will fire by `c.nextDeadline`. A connection has at most two
    /// entries: deadlines only move later, except that the idle deadline after connecting
    /// may come before the connect deadline that was scheduled.
    @inline(__always)
    func armTimer(_ c: TCPConnection) {
        let deadline = c.nextDeadline
        guard c.timerAt == 0 || deadline < c.timerAt else { return }
        c.timerAt = deadline
        wheel.schedule(c.timerToken.raw, at: deadline)
    }
}
