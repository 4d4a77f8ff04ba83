import SluiceConfig
import SluiceCore
import SluiceHTTP
import SluiceHTTP2

/// HTTP/2 to clients: the connection (read, feed the nghttp2 session, write its frames once per
/// loop turn), its streams (each served by a stream session, see `H2Connection`), the abuse
/// bounds (a connection the session closes gets GOAWAY, is counted and closed), and GOAWAY
/// when the worker stops.
extension Worker {
    /// Response bytes queued in the session per stream before the stream session is made to
    /// wait (its pipe fills, its writes block, the target is read no further).
    static let h2StreamBacklog = 128 * 1024

    // MARK: opening

    /// Turns an HTTP/1 session that negotiated `h2` (ALPN) or began with the h2c preface into
    /// an HTTP/2 connection. The socket, transport and unread bytes move over; the session's
    /// slot is freed without closing anything.
    func upgradeToHTTP2(_ c: HTTPConnection, preface: Bool) {
        guard let socket = c.client.take() else { return }
        let fd = socket.raw
        let h = takeH2Connection()
        h.generation &+= 1
        h.state = .open
        h.plan = c.plan
        h.listener = c.listener
        h.client = consume socket
        h.transport = c.transport
        h.io = c.clientIO
        h.clientAddress = c.clientAddress
        h.sourceFamily = c.sourceFamily
        h.sourceAddress = c.sourceAddress
        h.clientText = c.clientText
        h.clientCertHeaders = c.clientCertHeaders
        h.session = H2ServerSession(settings: Worker.h2Settings(plan(of: c).listeners[c.listener]))
        h.lastActivity = now
        h.timerAt = 0
        h.clientGone = false
        h.input = ByteQueue()
        h.output = ByteQueue()
        // Bytes already read (the preface and whatever followed it).
        if !c.input.isEmpty {
            h.input.base = httpBuffers.acquire()
            let n = min(c.input.count, httpBuffers.bufferSize)
            h.input.base!.copyMemory(from: c.input.base! + c.input.start, byteCount: n)
            h.input.end = n
        }
        detachHTTP(c)
        fds.unregister(fd)
        let token = fds.register(fd, owner: .h2Client, index: h.slot)
        do {
            try epoll.modify(fd, events: Worker.pollEvents, data: token)
        } catch {
            closeH2(h)
            return
        }
        armH2Timer(h)
        serviceH2(h)
    }

    static func h2Settings(_ l: Plan.ListenerPlan) -> H2ServerSettings {
        var s = H2ServerSettings()
        s.maxHeaderListSize = l.limits.maxHeadBytes
        s.maxHeaders = l.limits.maxHeaders
        s.maxConcurrentStreams = l.maxConcurrentStreams
        return s
    }

    private func takeH2Connection() -> H2Connection {
        if let slot = freeH2Slots.popLast() { return h2Conns[Int(slot)] }
        let h = H2Connection(slot: Int32(h2Conns.count))
        h2Conns.append(h)
        return h
    }

    /// Frees an HTTP/1 session's slot and buffers when its socket moved to an HTTP/2
    /// connection (the connection stays counted as open).
    private func detachHTTP(_ c: HTTPConnection) {
        for q in [c.input, c.toClient, c.exchange.toTarget, c.exchange.fromTarget] {
            if let b = q.base { httpBuffers.release(b) }
        }
        c.input = ByteQueue()
        c.toClient = ByteQueue()
        c.exchange.toTarget = ByteQueue()
        c.exchange.fromTarget = ByteQueue()
        c.exchange.machine.reset()
        c.transport = .plain
        c.state = .free
        c.plan = nil
        c.generation &+= 1
        freeHTTPSlots.append(c.slot)
    }

    // MARK: events

    func h2ClientEvent(slot: Int32, _ events: EpollEvents) {
        let h = h2Conns[Int(slot)]
        guard h.state != .free else { return }
        if events.contains(.error) {
            closeH2(h)
            return
        }
        h.io.note(events)
        serviceH2(h)
    }

    /// Reads what the client sent, feeds the session, acts on its events, writes its output.
    func serviceH2(_ h: H2Connection) {
        var rounds = 0
        while h.state != .free && rounds < 64 {
            rounds += 1
            if !h.input.isEmpty && h.state == .open {
                let result = h.session.receive(h.input.bytes, now: now)
                h.input.start = 0
                h.input.end = 0
                handleH2Events(h)
                if case .close(let reason) = result { h2Abused(h, reason) }
            }
            guard h.state != .free, h.io.readable, !h.clientGone, h.state == .open else { break }
            if h.input.base == nil { h.input.base = httpBuffers.acquire() }
            let room = min(httpBuffers.bufferSize, 16 * 1024)
            switch h.io.read(h.transport, h.fd, into: h.input.base!, count: room) {
            case .moved(let n):
                h.input.end = n
                h.lastActivity = now
            case .wait:
                break
            case .closed, .failed:
                h.clientGone = true
            }
            if h.input.isEmpty { break }
        }
        if h.state == .free { return }
        if h.input.isEmpty, let b = h.input.base {
            httpBuffers.release(b)
            h.input = ByteQueue()
        }
        // Frames (and the responses of the streams it fed) go out at the end of the loop turn
        // (`flushStreamPipes`), in one write per connection for all the events of the turn.
        deferH2Flush(h)
    }

    /// Lists the connection for the end-of-turn flush.
    func deferH2Flush(_ h: H2Connection) {
        if h.flushDeferred { return }
        h.flushDeferred = true
        pipeQueue.deferFlush(owner: h.slot)
    }

    /// The session closed the connection for abuse or a protocol error: count it by reason;
    /// its GOAWAY goes out with the next flush, then the connection closes.
    private func h2Abused(_ h: H2Connection, _ reason: H2CloseReason) {
        if let p = h.plan {
            let i = H2CloseReason.allCases.firstIndex(of: reason) ?? 0
            stats.h2Close(listener: p.listeners[h.listener].statsId, reason: i)
        }
        h.state = .closing
        // Streams already being served end now: a flood must not keep targets busy.
        for s in h.streams { endStreamSession(s) }
    }

    private func handleH2Events(_ h: H2Connection) {
        while let e = h.session.nextEvent() {
            switch e {
            case .request(let id, let head, let endStream):
                openStream(h, id: id, head: head, endStream: endStream)
            case .headersTooLarge(let id):
                answerOwn(h, stream: id, status: 431)
            case .data(let id, let bytes):
                guard let s = h.stream(id) else { continue }
                s.unacked &+= bytes.count
                s.scratch.removeAll(keepingCapacity: true)
                s.request.encodeBody(bytes, into: &s.scratch)
                feed(h, s)
            case .trailers(let id, let headers):
                guard let s = h.stream(id) else { continue }
                s.scratch.removeAll(keepingCapacity: true)
                s.request.encodeEnd(trailers: headers, into: &s.scratch)
                s.requestEnded = true
                feed(h, s)
            case .endStream(let id):
                guard let s = h.stream(id), !s.requestEnded else { continue }
                s.scratch.removeAll(keepingCapacity: true)
                s.request.encodeEnd(trailers: nil, into: &s.scratch)
                s.requestEnded = true
                feed(h, s)
            case .reset(let id, _), .streamClosed(let id):
                if let s = h.stream(id) {
                    s.responseEnded = true
                    releaseStream(h, s)
                }
            case .goaway:
                break  // the client leaves: its open streams finish
            }
        }
    }

    /// Sluice's own answer to a stream that never became a request to a target (a head over
    /// the limits, one that cannot be translated): counted like every answered request (SPEC §9).
    private func answerOwn(_ h: H2Connection, stream id: Int32, status: Int) {
        h.session.respond(stream: id, status: status, headers: [("content-type", "text/plain")], endStream: true)
        guard let p = h.plan, h.listener < p.listeners.count else { return }
        let statsId = p.listeners[h.listener].statsId
        stats.request(listener: statsId, group: -1, status: status, nanos: 0)
        stats.ownError(listener: statsId, status: status)
    }

    // MARK: streams

    private func openStream(_ h: H2Connection, id: Int32, head: H2RequestHead, endStream: Bool) {
        guard h.state == .open, let p = h.plan else {
            h.session.reset(stream: id, code: H2ErrorCode.refusedStream)
            return
        }
        let l = p.listeners[h.listener]
        let s = h2StreamPool.popLast() ?? H2Stream(queue: pipeQueue)
        s.id = id
        s.pipe.reset()
        s.pipe.owner = h.slot
        s.pipe.generation = h.generation
        s.pipe.stream = id
        s.request = H2ToHTTP1Request()
        s.response.reset(requestMethod: Worker.methodKind(head.method))
        s.unacked = 0
        s.responseStarted = false
        s.responseEnded = false
        s.requestEnded = endStream
        s.grpc = head.headers.firstValue("content-type", hasPrefix: "application/grpc")
        s.scratch.removeAll(keepingCapacity: true)
        switch s.request.encodeHead(head, endStream: endStream, into: &s.scratch) {
        case .success:
            break
        case .failure:
            answerOwn(h, stream: id, status: 400)
            h2StreamPool.append(s)
            return
        }
        if endStream { s.request.encodeEnd(trailers: nil, into: &s.scratch) }
        if l.statsId >= 0 { stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.h2Streams)) }
        // The stream session: an HTTP/1 session over the pipe, with the connection's facts.
        let c = takeHTTPConnection(limits: l.limits)
        c.generation &+= 1
        c.state = .open
        c.exchange.machine.reset()
        c.plan = p
        c.listener = h.listener
        c.logFd = accessLogFds[h.listener] >= 0 ? accessLogFds[h.listener] : nil
        c.client = nil
        c.streamPipe = s.pipe
        c.transport = .stream(s.pipe)
        c.clientAddress = h.clientAddress
        c.clientText = h.clientText
        c.sourceFamily = h.sourceFamily
        c.sourceAddress = h.sourceAddress
        c.clientCertHeaders = h.clientCertHeaders
        c.clientIO = Readiness()
        c.clientIO.writable = true
        c.clientClosed = false
        c.firstRequest = false
        c.exchange.targetFinished = false
        c.exchange.upstream = nil
        c.parser.reset()
        c.lastActivity = now
        c.timerAt = 0
        s.session = c.slot
        h.streams.append(s)
        feed(h, s)
    }

    /// Pushes translated request bytes into the stream's pipe and lets the stream session
    /// read them.
    private func feed(_ h: H2Connection, _ s: H2Stream) {
        s.scratch.withUnsafeBytes { s.pipe.pushAll($0) }
        s.scratch.removeAll(keepingCapacity: true)
        guard s.session >= 0 else { return }
        let c = httpConns[Int(s.session)]
        c.clientIO.noteReadable()
        drive(c)
    }

    static func methodKind(_ m: ArraySlice<UInt8>) -> HTTPMethod {
        if m.elementsEqual("HEAD".utf8) { return .head }
        if m.elementsEqual("CONNECT".utf8) { return .connect }
        return .get
    }

    /// Closes a stream's session (its exchange ends; a target connection in use is closed).
    func endStreamSession(_ s: H2Stream) {
        guard s.session >= 0 else { return }
        let c = httpConns[Int(s.session)]
        s.session = -1
        if c.state != .free && c.streamPipe === s.pipe { closeHTTP(c) }
    }

    /// The stream is over on the HTTP/2 side: end its session, give the stream back.
    private func releaseStream(_ h: H2Connection, _ s: H2Stream) {
        s.pipe.remoteClosed()
        endStreamSession(s)
        if let i = h.streams.firstIndex(where: { $0 === s }) {
            h.streams.remove(at: i)
            s.pipe.reset()
            h2StreamPool.append(s)
        }
    }

    /// A stream session closed (from `closeHTTP`): whatever it wrote is translated; a response
    /// left unfinished resets the stream.
    func streamSessionClosed(_ c: HTTPConnection, _ pipe: StreamPipe) {
        guard pipe.owner >= 0, Int(pipe.owner) < h2Conns.count else { return }
        let h = h2Conns[Int(pipe.owner)]
        guard h.state != .free, h.generation == pipe.generation, let s = h.stream(pipe.stream), s.session == c.slot else {
            return
        }
        s.session = -1
        translateResponse(h, s, sessionClosed: true)
        if !s.responseEnded {
            h.session.reset(stream: s.id, code: H2ErrorCode.internalError)
            s.responseEnded = true
        }
    }

    // MARK: output, timers, closing

    /// Writes the session's pending frames (batched into one buffer) to the client; closes
    /// the connection once it is finished.
    func flushH2(_ h: H2Connection) {
        // Writing frees session backlog, which lets waiting responses move on, which queues
        // more frames: a few rounds while the socket takes them.
        var rounds = 0
        while rounds < 8 && h.state != .free {
            rounds += 1
            writeH2(h)
            guard h.state != .free else { return }
            var moved = false
            // (Also with an empty pipe: the response's end may not have been stepped to yet.)
            for s in h.streams where !s.responseEnded && (s.responseStarted || !s.pipe.outboundBytes.isEmpty)
                && h.session.bufferedData(stream: s.id) < Worker.h2StreamBacklog {
                translateResponse(h, s, sessionClosed: false)
                moved = true
            }
            if !moved || !h.session.wantsWrite || !h.io.writable { break }
        }
        guard h.state != .free else { return }
        let finished = h.session.isFinished || (h.clientGone && h.streams.allSatisfy { $0.responseEnded })
            || (h.state == .closing && h.output.isEmpty && !h.session.wantsWrite)
        if finished && h.output.isEmpty {
            closeH2(h)
            return
        }
        armH2Timer(h)
    }

    private func writeH2(_ h: H2Connection) {
        guard h.state != .free else { return }
        guard let written = writeFrames(&h.output, io: &h.io, transport: h.transport, fd: h.fd,
                                        wantsWrite: h.session.wantsWrite,
                                        produce: { h.session.produceOutput(into: $0, capacity: $1) }) else {
            closeH2(h)
            return
        }
        if written > 0 { h.lastActivity = now }
    }

    /// Writes an HTTP/2 session's frames to its socket, batched in one pool buffer: produces
    /// more while the socket takes them. The one write loop of client and target HTTP/2
    /// connections. Returns the bytes written, nil when the socket failed (the caller closes
    /// the connection).
    func writeFrames(_ output: inout ByteQueue, io: inout Readiness, transport: Transport, fd: Int32,
                     wantsWrite: @autoclosure () -> Bool, produce: (UnsafeMutableRawPointer, Int) -> Int) -> Int? {
        var written = 0
        while true {
            if output.isEmpty {
                guard wantsWrite() else { break }
                if output.base == nil { output.base = httpBuffers.acquire() }
                guard let base = output.base else { break }
                output.start = 0
                output.end = produce(base, httpBuffers.bufferSize)
                if output.isEmpty { break }
            }
            guard io.writable, let base = output.base else { break }
            switch io.write(transport, fd, from: base + output.start, count: output.count) {
            case .moved(let n):
                output.start += n
                written += n
            case .wait: break
            case .closed, .failed: return nil
            }
            // A TLS write may be partial (one record) with room left: write on while writable.
            if !output.isEmpty && !io.writable { break }
        }
        if output.isEmpty, let b = output.base {
            httpBuffers.release(b)
            output = ByteQueue()
        }
        return written
    }

    func armH2Timer(_ h: H2Connection) {
        guard let p = h.plan else { return }
        let d = h.state == .closing ? h.lastActivity &+ 1_000_000_000 : h.lastActivity &+ p.listeners[h.listener].idleTimeout
        guard h.timerAt == 0 || d < h.timerAt else { return }
        h.timerAt = d
        wheel.schedule(h.timerToken.raw, at: d)
    }

    func h2TimerFired(slot: Int32, generation: UInt32) {
        let h = h2Conns[Int(slot)]
        guard h.generation == generation, h.state != .free else { return }
        if h.timerAt <= now { h.timerAt = 0 }
        guard let p = h.plan else { return }
        let limit = h.state == .closing ? 1_000_000_000 : p.listeners[h.listener].idleTimeout
        let busy = h.streams.contains { !$0.responseEnded }
        if now &- h.lastActivity >= limit && (!busy || h.state == .closing) {
            // Idle (no stream in progress), or a closing connection that would not drain.
            if h.state == .open {
                h.session.goaway(code: H2ErrorCode.noError)
                h.state = .closing
                flushH2(h)
                if h.state != .free { closeH2(h) }
            } else {
                closeH2(h)
            }
            return
        }
        armH2Timer(h)
    }

    /// The worker stops: every HTTP/2 client is told with GOAWAY; streams in flight finish.
    func goawayAll() {
        for h in h2Conns where h.state == .open {
            h.session.goaway(code: H2ErrorCode.noError)
            flushH2(h)
        }
    }

    func closeH2(_ h: H2Connection) {
        guard h.state != .free else { return }
        h.state = .free
        for s in h.streams {
            s.pipe.remoteClosed()
            endStreamSession(s)
            s.pipe.reset()
            h2StreamPool.append(s)
        }
        h.streams.removeAll(keepingCapacity: true)
        if let p = h.plan, p.listeners[h.listener].statsId >= 0 {
            stats.add(StatsBlock.listenerSlot(p.listeners[h.listener].statsId, StatsBlock.connClosed))
        }
        if case .tls(let s) = h.transport { s.shutdown() }
        h.transport = .plain
        if let fd = h.client?.raw {
            fds.unregister(fd)
            h.client = nil  // closes
        }
        for q in [h.input, h.output] {
            if let b = q.base { httpBuffers.release(b) }
        }
        h.input = ByteQueue()
        h.output = ByteQueue()
        h.session = H2ServerSession()
        h.plan = nil
        h.generation &+= 1
        freeH2Slots.append(h.slot)
        activeLocal -= 1
        _ = process.activeConnections.subtract(1, ordering: .relaxed)
    }
}
