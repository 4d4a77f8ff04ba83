import SluiceConfig
import SluiceCore
import SluiceHTTP
import SluiceHTTP2

/// HTTP/2 to targets (`protocol_version: http2 | grpc`): few connections per target per
/// worker, each multiplexing the streams of many exchanges (see `H2Upstream`). Connecting,
/// TLS with ALPN h2, translating requests and responses, flow control, GOAWAY and failures.
extension Worker {
    /// An idle HTTP/2 target connection is closed after this long without a stream.
    static let h2UpstreamIdle: UInt64 = 30_000_000_000

    enum StreamAttach { case ready, pending, failed, noSocket }

    /// Gives the exchange of `c` a stream to `target` of `group` (of the worker's `plan`): on an
    /// open connection with room (ready), on one still connecting (pending), or on a new one.
    func attachH2Stream(_ c: HTTPConnection, group: Int, target: Int) -> StreamAttach {
        var hu: H2Upstream?
        for h in h2Upstreams where h.state != .free && h.group == group && h.target == target
            && h.planGeneration == plan.generation && h.hasRoom {
            hu = h
            break
        }
        if hu == nil {
            guard let h = openH2Upstream(group: group, target: target) else { return .failed }
            hu = h
        }
        guard let h = hu else { return .failed }
        let st = h2UpstreamStreamPool.popLast() ?? H2UpstreamStream(queue: pipeQueue)
        st.pipe.reset()
        st.pipe.owner = h.slot
        st.pipe.generation = h.generation
        st.id = 0
        st.request = HTTP1ToH2Request(scheme: plan.groups[group].tls == nil ? "http" : "https")
        st.scratch.removeAll(keepingCapacity: true)
        st.unacked = 0
        st.requestEnded = false
        st.responseStarted = false
        st.responseEnded = false
        st.grpc = plan.groups[group].protocolVersion == .grpc
        let u = takeUpstream()
        u.socket = nil
        u.group = group
        u.target = target
        u.planGeneration = plan.generation
        u.transport = .stream(st.pipe)
        u.tlsPending = false
        u.io = Readiness()
        u.io.writable = true
        u.connecting = h.state != .open
        st.upstream = u.slot
        h.streams.append(st)
        h.lastActivity = now
        attach(c, u)
        return u.connecting ? .pending : .ready
    }

    private func openH2Upstream(group: Int, target: Int) -> H2Upstream? {
        let h: H2Upstream
        if let slot = freeH2UpstreamSlots.popLast() {
            h = h2Upstreams[Int(slot)]
        } else {
            h = H2Upstream(slot: Int32(h2Upstreams.count))
            h2Upstreams.append(h)
        }
        h.generation &+= 1
        h.group = group
        h.target = target
        h.planGeneration = plan.generation
        h.session = H2ClientSession()
        h.transport = .plain
        h.tlsPending = false
        h.tls = plan.groups[group].tls
        h.serverName = plan.groups[group].serverName
        h.io = Readiness()
        h.input = ByteQueue()
        h.output = ByteQueue()
        h.streams.removeAll(keepingCapacity: true)
        h.lastActivity = now
        h.timerAt = 0
        h.connectDeadline = now &+ Worker.h2ConnectTimeout
        switch startConnect(to: plan.groups[group].targets[target].address, owner: .h2Upstream, index: h.slot) {
        case .connected(let socket):
            h.socket = consume socket
            h.state = .connecting
            h.io.writable = true
            armH2UpstreamTimer(h)
            if !h2UpstreamConnected(h) { return h.state == .free ? nil : h }
            return h
        case .inProgress(let socket):
            h.socket = consume socket
            h.state = .connecting
            armH2UpstreamTimer(h)
            return h
        case .failed:
            freeH2UpstreamSlots.append(h.slot)
            h.state = .free
            return nil
        case .noSocket:
            freeH2UpstreamSlots.append(h.slot)
            h.state = .free
            return nil
        }
    }

    /// How long connecting (and the TLS handshake) to an HTTP/2 target may take; the
    /// exchanges waiting on it have their own connect timeouts too.
    static let h2ConnectTimeout: UInt64 = 10_000_000_000

    /// TCP connected: TLS for https groups, then the connection is open. False while waiting
    /// (or when it failed: then it is closed).
    private func h2UpstreamConnected(_ h: H2Upstream) -> Bool {
        if let context = h.tls {
            if !h.tlsPending {
                guard let s = context.makeStream(fd: h.fd, serverName: h.serverName) else {
                    failH2Upstream(h)
                    return false
                }
                h.transport = .tls(s)
                h.tlsPending = true
                h.io.readable = true
                h.io.writable = true
            }
            guard case .tls(let s) = h.transport else { return false }
            switch stepTargetHandshake(s, io: &h.io) {
            case .waiting: return false
            case .failed:
                failH2Upstream(h)
                return false
            case .done:
                h.tlsPending = false
                guard s.alpn == .h2 else {  // the target does not speak HTTP/2 over TLS
                    failH2Upstream(h)
                    return false
                }
            }
        }
        h.state = .open
        h.io.readable = true
        h.io.writable = true
        h.lastActivity = now
        for st in h.streams where st.upstream >= 0 {
            let u = upstreams[Int(st.upstream)]
            guard u.connecting, u.owner >= 0 else { continue }
            u.connecting = false
            let c = httpConns[Int(u.owner)]
            c.exchange.machine.targetConnected()
            armHTTPTimer(c)
            drive(c)
        }
        flushH2Upstream(h)
        return h.state == .open
    }

    func h2UpstreamEvent(slot: Int32, _ events: EpollEvents) {
        let h = h2Upstreams[Int(slot)]
        guard h.state != .free else { return }
        if h.state == .connecting {
            if !events.isDisjoint(with: [.error, .hangup]) {
                failH2Upstream(h)
                return
            }
            h.io.note(events)
            guard h.tlsPending || events.contains(.writable) else { return }
            _ = h2UpstreamConnected(h)
            return
        }
        if events.contains(.error) {
            failH2Upstream(h)
            return
        }
        h.io.note(events)
        serviceH2Upstream(h)
    }

    private func serviceH2Upstream(_ h: H2Upstream) {
        var rounds = 0
        while h.state == .open || h.state == .draining {
            rounds += 1
            if rounds > 64 { break }
            guard h.io.readable else { break }
            if h.input.base == nil { h.input.base = httpBuffers.acquire() }
            switch h.io.read(h.transport, h.fd, into: h.input.base!, count: min(httpBuffers.bufferSize, 16 * 1024)) {
            case .moved(let n):
                h.lastActivity = now
                let result = h.session.receive(UnsafeRawBufferPointer(start: h.input.base!, count: n), now: now)
                handleH2UpstreamEvents(h)
                if case .close = result {
                    flushH2Upstream(h)
                    failH2Upstream(h)
                    return
                }
            case .wait:
                break
            case .closed, .failed:
                failH2Upstream(h)
                return
            }
        }
        if let b = h.input.base {
            httpBuffers.release(b)
            h.input = ByteQueue()
        }
        // What the exchanges wrote meanwhile is translated at the end of the loop turn
        // (`flushStreamPipes`), with every other pipe, and this connection flushed again then.
        flushH2Upstream(h)
    }

    private func stream(_ h: H2Upstream, id: Int32) -> H2UpstreamStream? {
        for st in h.streams where st.id == id { return st }
        return nil
    }

    private func handleH2UpstreamEvents(_ h: H2Upstream) {
        while let e = h.session.nextEvent() {
            switch e {
            case .responseHead(let id, let status, let headers, let endStream):
                guard let st = stream(h, id: id), !st.responseStarted else { continue }
                st.responseStarted = true
                st.scratch.removeAll(keepingCapacity: true)
                guard st.response.encodeHead(status: status, headers: headers, endStream: endStream, into: &st.scratch) else {
                    h.session.reset(stream: id, code: H2ErrorCode.protocolError)
                    streamFailed(st)
                    continue
                }
                if endStream {
                    st.response.encodeEnd(trailers: nil, into: &st.scratch)
                    st.responseEnded = true
                }
                push(st)
            case .data(let id, let bytes):
                guard let st = stream(h, id: id) else { continue }
                st.unacked &+= bytes.count
                st.scratch.removeAll(keepingCapacity: true)
                st.response.encodeBody(bytes, into: &st.scratch)
                push(st)
            case .trailers(let id, let headers):
                guard let st = stream(h, id: id), !st.responseEnded else { continue }
                st.scratch.removeAll(keepingCapacity: true)
                st.response.encodeEnd(trailers: headers, into: &st.scratch)
                st.responseEnded = true
                push(st)
            case .endStream(let id):
                guard let st = stream(h, id: id), !st.responseEnded else { continue }
                st.scratch.removeAll(keepingCapacity: true)
                st.response.encodeEnd(trailers: nil, into: &st.scratch)
                st.responseEnded = true
                push(st)
            case .reset(let id, _), .streamClosed(let id):
                guard let st = stream(h, id: id), !st.responseEnded else { continue }
                streamFailed(st)
            case .goaway(let last, _):
                h.state = .draining
                for st in h.streams where st.id > last || st.id == 0 { streamFailed(st) }
            }
        }
    }

    /// The target will not complete this stream: the exchange reads the end of its input
    /// (a 502 before the response head, a cut response after it).
    private func streamFailed(_ st: H2UpstreamStream) {
        st.responseEnded = true
        st.pipe.remoteClosed()
        wake(st, readable: true)
    }

    /// Pushes translated response bytes to the exchange.
    private func push(_ st: H2UpstreamStream) {
        st.scratch.withUnsafeBytes { st.pipe.pushAll($0) }
        st.scratch.removeAll(keepingCapacity: true)
        wake(st, readable: true)
    }

    private func wake(_ st: H2UpstreamStream, readable: Bool) {
        guard st.upstream >= 0 else { return }
        let u = upstreams[Int(st.upstream)]
        guard u.owner >= 0 else { return }
        if readable { u.io.noteReadable() } else { u.io.noteWritable() }
        drive(httpConns[Int(u.owner)])
    }

    /// What an exchange wrote to (or read from) its stream pipe: translate the request into
    /// the session, credit the response bytes it read.
    func flushTargetPipe(_ pipe: StreamPipe, touched: inout [H2Upstream]) {
        guard pipe.owner >= 0, Int(pipe.owner) < h2Upstreams.count else { return }
        let h = h2Upstreams[Int(pipe.owner)]
        guard h.state != .free, h.generation == pipe.generation,
              let st = h.streams.first(where: { $0.pipe === pipe }) else { return }
        let taken = pipe.takeConsumed()
        if taken > 0 && st.unacked > 0 && st.id > 0 {
            let credit = min(taken, st.unacked)
            st.unacked -= credit
            h.session.consume(stream: st.id, bytes: credit)
        }
        translateRequest(h, st)
        if !touched.contains(where: { $0 === h }) { touched.append(h) }
    }

    private func translateRequest(_ h: H2Upstream, _ st: H2UpstreamStream) {
        var took = false
        while !st.requestEnded && (st.id == 0 || h.session.bufferedData(stream: st.id) < Worker.h2StreamBacklog) {
            let bytes = st.pipe.outboundBytes
            let (step, used) = st.request.step(bytes)
            switch step {
            case .needMore:
                st.pipe.consumeOutbound(used)
                took = took || used > 0
                if took { wake(st, readable: false) }
                return
            case .head:
                var head = st.request.head
                if st.grpc { _ = head.headers.append(name: "te", value: "trailers") }
                guard let id = h.session.submitRequest(head, endStream: st.request.endStream) else {
                    st.pipe.consumeOutbound(used)
                    streamFailed(st)
                    return
                }
                st.id = id
                st.response = H2ToHTTP1Response(requestMethod: st.request.method)
                if st.request.endStream { st.requestEnded = true }
            case .body(let r):
                h.session.sendData(stream: st.id, UnsafeRawBufferPointer(rebasing: bytes[r]), endStream: false)
            case .trailers:
                h.session.sendTrailers(stream: st.id, st.request.trailers)
                st.requestEnded = true
            case .end:
                if st.id > 0 { h.session.sendData(stream: st.id, UnsafeRawBufferPointer(start: nil, count: 0), endStream: true) }
                st.requestEnded = true
            case .error:
                st.pipe.consumeOutbound(used)
                if st.id > 0 { h.session.reset(stream: st.id, code: H2ErrorCode.internalError) }
                streamFailed(st)
                return
            }
            st.pipe.consumeOutbound(used)
            took = took || used > 0
        }
        // Bytes after the request's end (none expected) are dropped.
        if st.requestEnded { st.pipe.consumeOutbound(st.pipe.outboundBytes.count) }
        if took { wake(st, readable: false) }
    }

    /// The exchange is done with its stream (`discard` of a stream `UpstreamConnection`).
    func releaseH2Stream(_ u: UpstreamConnection) {
        guard case .stream(let pipe) = u.transport else { return }
        u.transport = .plain
        guard pipe.owner >= 0, Int(pipe.owner) < h2Upstreams.count else { return }
        let h = h2Upstreams[Int(pipe.owner)]
        guard h.state != .free, h.generation == pipe.generation,
              let i = h.streams.firstIndex(where: { $0.pipe === pipe }) else { return }
        let st = h.streams[i]
        if st.id > 0 && (!st.responseEnded || !st.requestEnded) { h.session.reset(stream: st.id, code: H2ErrorCode.cancel) }
        h.streams.remove(at: i)
        st.upstream = -1
        st.pipe.reset()
        h2UpstreamStreamPool.append(st)
        h.lastActivity = now
        if h.streams.isEmpty && (h.state == .draining || h.planGeneration != plan.generation) {
            closeH2Upstream(h)
            return
        }
        flushH2Upstream(h)
        armH2UpstreamTimer(h)
    }

    func flushH2Upstream(_ h: H2Upstream) {
        // Writing frees session backlog, which lets waiting requests move on, which queues
        // more frames: a few rounds while the socket takes them.
        var rounds = 0
        while rounds < 8 && (h.state == .open || h.state == .draining) {
            rounds += 1
            writeH2Upstream(h)
            guard h.state == .open || h.state == .draining, h.io.writable else { return }
            // Requests that waited for the session's backlog to drain.
            var moved = false
            // (Also with an empty pipe: the request's end may not have been stepped to yet.)
            for st in h.streams where !st.requestEnded
                && (st.id == 0 || h.session.bufferedData(stream: st.id) < Worker.h2StreamBacklog) {
                translateRequest(h, st)
                moved = true
            }
            if !moved || !h.session.wantsWrite { return }
        }
    }

    private func writeH2Upstream(_ h: H2Upstream) {
        if writeFrames(&h.output, io: &h.io, transport: h.transport, fd: h.fd, wantsWrite: h.session.wantsWrite,
                       produce: { h.session.produceOutput(into: $0, capacity: $1) }) == nil {
            failH2Upstream(h)
        }
    }

    /// The connection failed or the target closed it: waiting exchanges try another target,
    /// running ones see their target fail.
    func failH2Upstream(_ h: H2Upstream) {
        guard h.state != .free else { return }
        let streams = h.streams
        h.state = .draining
        for st in streams where st.upstream >= 0 {
            let u = upstreams[Int(st.upstream)]
            if u.connecting, u.owner >= 0 {
                upstreamConnectFailed(httpConns[Int(u.owner)], timedOut: false)
            } else {
                streamFailed(st)
            }
        }
        closeH2Upstream(h)
    }

    func closeH2Upstream(_ h: H2Upstream) {
        guard h.state != .free else { return }
        h.state = .free
        for st in h.streams {
            st.pipe.remoteClosed()
            if st.upstream >= 0 {
                let u = upstreams[Int(st.upstream)]
                if u.owner >= 0 {
                    u.io.noteReadable()
                    drive(httpConns[Int(u.owner)])
                }
            }
        }
        // Streams still bound are released by their exchanges (`releaseH2Stream` finds the
        // connection gone and only drops the pipe).
        h.streams.removeAll(keepingCapacity: true)
        if case .tls(let s) = h.transport { s.shutdown() }
        h.transport = .plain
        h.tls = nil
        if let fd = h.socket?.raw {
            fds.unregister(fd)
            h.socket = nil  // closes
        }
        for q in [h.input, h.output] {
            if let b = q.base { httpBuffers.release(b) }
        }
        h.input = ByteQueue()
        h.output = ByteQueue()
        h.generation &+= 1
        freeH2UpstreamSlots.append(h.slot)
    }

    func armH2UpstreamTimer(_ h: H2Upstream) {
        let d = h.state == .connecting ? h.connectDeadline : h.lastActivity &+ Worker.h2UpstreamIdle
        guard h.timerAt == 0 || d < h.timerAt else { return }
        h.timerAt = d
        wheel.schedule(h.timerToken.raw, at: d)
    }

    func h2UpstreamTimerFired(slot: Int32, generation: UInt32) {
        let h = h2Upstreams[Int(slot)]
        guard h.generation == generation, h.state != .free else { return }
        if h.timerAt <= now { h.timerAt = 0 }
        if h.state == .connecting {
            if now >= h.connectDeadline { failH2Upstream(h) } else { armH2UpstreamTimer(h) }
            return
        }
        if h.streams.isEmpty && now &- h.lastActivity >= Worker.h2UpstreamIdle {
            h.session.goaway(code: H2ErrorCode.noError)
            flushH2Upstream(h)
            closeH2Upstream(h)
            return
        }
        armH2UpstreamTimer(h)
    }
}
