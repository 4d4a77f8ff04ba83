import SluiceCore
import SluiceHTTP
import SluiceHTTP2

/// HTTP/2 to clients, the response direction: what stream sessions wrote to their pipes is
/// translated into HEADERS, DATA and trailers once per loop turn (and credit for request
/// bytes they read goes back to the client). See `Worker+H2.swift` for the connection.
extension Worker {

    /// Translates what stream sessions wrote since the last look; called once per loop turn
    /// and after a connection's events.
    func flushStreamPipes() {
        // Flushing drives stream sessions, which may write again: a few rounds, so nothing
        // queued waits for the next event.
        var rounds = 0
        while !pipeQueue.isEmpty && rounds < 4 {
            rounds += 1
            flushStreamPipesOnce()
        }
    }

    private func flushStreamPipesOnce() {
        // The connections touched form an intrusive list (`nextTouched`): no array per call.
        var touched: H2Connection? = nil
        var targets: [H2Upstream] = []
        pipeQueue.drain { pipe in
            if pipe.side == StreamPipe.targetSide {
                flushTargetPipe(pipe, touched: &targets)
                return
            }
            guard pipe.owner >= 0, Int(pipe.owner) < h2Conns.count else { return }
            let h = h2Conns[Int(pipe.owner)]
            guard h.state != .free, h.generation == pipe.generation, let s = h.stream(pipe.stream) else { return }
            creditConsumed(h, s)
            translateResponse(h, s, sessionClosed: false)
            if !h.isTouched {
                h.isTouched = true
                h.nextTouched = touched
                touched = h
            }
        }
        pipeQueue.drainOwners { slot in
            guard slot >= 0, Int(slot) < h2Conns.count else { return }
            let h = h2Conns[Int(slot)]
            h.flushDeferred = false
            if h.state != .free && !h.isTouched {
                h.isTouched = true
                h.nextTouched = touched
                touched = h
            }
        }
        while let h = touched {
            touched = h.nextTouched
            h.nextTouched = nil
            h.isTouched = false
            if h.state != .free { flushH2(h) }
        }
        for h in targets where h.state != .free { flushH2Upstream(h) }
    }

    /// Gives the client flow-control credit for request bytes the stream session took.
    func creditConsumed(_ h: H2Connection, _ s: H2Stream) {
        let taken = s.pipe.takeConsumed()
        if taken > 0 && s.unacked > 0 {
            let credit = min(taken, s.unacked)
            s.unacked -= credit
            h.session.consume(stream: s.id, bytes: credit)
        }
    }

    /// Moves the HTTP/1.1 response bytes the stream session wrote into the HTTP/2 session, as
    /// far as the stream's backlog allows.
    func translateResponse(_ h: H2Connection, _ s: H2Stream, sessionClosed: Bool) {
        guard !s.responseEnded else {
            s.pipe.consumeOutbound(s.pipe.outboundBytes.count)
            return
        }
        var tookBytes = false
        while !s.responseEnded && h.session.bufferedData(stream: s.id) < Worker.h2StreamBacklog {
            let bytes = s.pipe.outboundBytes
            var (step, used) = s.response.step(bytes)
            if step == .needMore && used == bytes.count && (sessionClosed || s.pipe.outboundEnded) {
                // The stream session is done writing: an until-close body ends here.
                s.pipe.consumeOutbound(used)
                tookBytes = tookBytes || used > 0
                (step, used) = (s.response.endOfInput(), 0)
            }
            switch step {
            case .needMore:
                s.pipe.consumeOutbound(used)
                tookBytes = tookBytes || used > 0
                return finishTranslation(h, s, tookBytes)
            case .head:
                s.responseStarted = true
                if s.grpc && s.pipe.ownAnswer && s.response.status >= 400 {
                    // Sluice's own error to a gRPC client: Trailers-Only with a grpc-status.
                    h.session.respond(stream: s.id, status: 200, headers: GRPC.trailersOnlyHeaders(status: s.response.status),
                                      endStream: true)
                    s.responseEnded = true
                } else {
                    h.session.respond(stream: s.id, status: s.response.status, headers: s.response.headers,
                                      endStream: s.response.endStream)
                    if s.response.endStream { s.responseEnded = true }
                }
            case .body(let r):
                h.session.sendData(stream: s.id, UnsafeRawBufferPointer(rebasing: bytes[r]), endStream: false)
            case .trailers:
                h.session.sendTrailers(stream: s.id, s.response.trailers)
                s.responseEnded = true
            case .end:
                h.session.sendData(stream: s.id, UnsafeRawBufferPointer(start: nil, count: 0), endStream: true)
                s.responseEnded = true
            case .error:
                h.session.reset(stream: s.id, code: H2ErrorCode.internalError)
                s.responseEnded = true
            }
            s.pipe.consumeOutbound(used)
            tookBytes = tookBytes || used > 0
        }
        finishTranslation(h, s, tookBytes)
    }

    func finishTranslation(_ h: H2Connection, _ s: H2Stream, _ tookBytes: Bool) {
        if s.responseEnded {
            s.pipe.consumeOutbound(s.pipe.outboundBytes.count)
            // The exchange is complete: the stream session has nothing more to do.
            endStreamSession(s)
            return
        }
        if tookBytes && s.session >= 0 {
            let c = httpConns[Int(s.session)]
            c.clientIO.noteWritable()
            drive(c)
        }
    }
}
