import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// The L7 data path, target side: pooled target connections, the request and its body on
/// the way in, the response and its body on the way out, WebSocket tunnels.
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
        c.exchange.responseParser.reset()
        c.exchange.request.begin(head.framing)
        c.exchange.forwarded = true
        c.exchange.keyHash = requestKeyHash(c, head, p.groups[c.exchange.group])
        // The rewritten head goes to `toTarget`; the original head leaves `input`.
        if c.exchange.toTarget.base == nil { c.exchange.toTarget.base = httpBuffers.acquire() }
        c.exchange.toTarget.start = 0
        let options = HTTPWriter.ForwardOptions(xff: l.xff, clientAddress: c.clientText, proto: "http", port: l.port,
                                                traceID: nextTraceID(), keepAliveToTarget: true)
        let written = HTTPWriter.writeUpstreamHead(
            head, source: c.input.bytes,
            into: UnsafeMutableRawBufferPointer(start: c.exchange.toTarget.base!, count: httpBuffers.bufferSize),
            options: options)
        guard let n = written else {
            perform(c, c.exchange.machine.fail(status: 431))
            return
        }
        c.exchange.toTarget.end = n
        c.input.start += head.headLength
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

    /// Finds a target connection for the current exchange: a pooled one, or a new one.
    /// Answers 502/504/503 when no target can be had. Picks and connects through the path
    /// L4 uses (`pickTarget`, `startConnect`), with the pool look-up between the two.
    func connectUpstream(_ c: HTTPConnection) {
        // A new Plan arrived mid-request (health change, reload): pick from it. When the
        // listener or group is gone, nothing was sent to the client yet (a retry happens only
        // before the response began): answer 503 on the old Plan and close.
        guard rebase(c, withGroup: true) else {
            perform(c, c.exchange.machine.fail(status: 503))
            return
        }
        // After `rebase` the connection runs on the worker's `plan`, whose indices
        // `pickTarget` and the pool use.
        let group = c.exchange.group
        let choice = TargetChoice(hash: c.exchange.keyHash, sticky: c.exchange.stickyTarget,
                                  roundRobin: c.exchange.keyMissing)
        attempts: while c.exchange.machine.mayAttempt {
            guard let t = pickTarget(group: group, tried: &c.exchange.tried, choice: choice) else { break }
            c.exchange.machine.targetPicked()
            if let u = takePooled(group: group, target: t) {
                attach(c, u)
                c.exchange.machine.targetConnected()
                return
            }
            let u = takeUpstream()
            switch startConnect(to: plan.groups[group].targets[t].address, owner: .upstream, index: u.slot) {
            case .connected(let socket):
                adopt(u, socket: socket, group: group, target: t, connecting: false)
                attach(c, u)
                c.exchange.machine.targetConnected()
                return
            case .inProgress(let socket):
                adopt(u, socket: socket, group: group, target: t, connecting: true)
                attach(c, u)
                c.exchange.machine.connectPending(now: now, policy: policy(of: c))
                armHTTPTimer(c)
                return
            case .failed:
                discard(u)  // only its slot: `startConnect` closed the socket
                plan.groups[group].targets[t].runtime.failed()
                let next = c.exchange.machine.connectFailed(timedOut: false)
                if next == .connect { continue }
                perform(c, next)
                return
            case .noSocket:
                discard(u)
                break attempts
            }
        }
        // No target could be picked before any was tried (none listed, all draining or at
        // weight 0): 503. Targets were tried and failed: 504 if one timed out, else 502.
        perform(c, c.exchange.machine.noTargetLeft())
    }

    /// Readies a slab object for a new connection to `target` of `group` (of the worker's
    /// `plan`); it takes ownership of `socket`, which `startConnect` registered for it.
    private func adopt(_ u: UpstreamConnection, socket: consuming Descriptor, group: Int, target: Int,
                       connecting: Bool) {
        u.socket = consume socket
        u.group = group
        u.target = target
        u.planGeneration = plan.generation
        u.transport = .plain
        u.io = Readiness()
        u.io.writable = !connecting
        u.connecting = connecting
    }

    /// Moves the connection to the worker's current Plan, if it runs on an older one: the
    /// listener by name (still http), and with `withGroup` the exchange's group by name, its
    /// tried targets and sticky target by address. Returns false and changes nothing when the
    /// listener or group is gone; then `c.plan` and every index in `c` still belong together.
    ///
    /// Indices kept in a connection (`listener`, `group`, `tried`, `stickyTarget`,
    /// `logTarget`) are only valid with `c.plan`; the per-worker arrays (`pickers`,
    /// `actionChoosers`, `idlePool`) only with the worker's `plan`. Cold path (after a Plan
    /// change).
    func rebase(_ c: HTTPConnection, withGroup: Bool) -> Bool {
        guard let old = c.plan, old !== plan else { return true }
        let name = old.listeners[c.listener].name
        guard let listener = plan.listeners.firstIndex(where: { $0.isHTTP && $0.name == name }) else { return false }
        if withGroup {
            guard let (group, tried) = plan.rebase(group: c.exchange.group, tried: c.exchange.tried, from: old) else { return false }
            let targets = plan.groups[group].targets
            func map(_ t: Int) -> Int {
                guard t >= 0, t < old.groups[c.exchange.group].targets.count else { return -1 }
                let key = old.groups[c.exchange.group].targets[t].key
                return targets.firstIndex { $0.key == key } ?? -1
            }
            let sticky = map(c.exchange.stickyTarget)
            // The worker's weights are for `plan`, the Plan the connection moves to.
            let weights = group < groupWeights.count ? groupWeights[group].weights : []
            c.exchange.stickyTarget = sticky >= 0 && sticky < weights.count && weights[sticky] > 0 ? sticky : -1
            c.exchange.logTarget = map(c.exchange.logTarget)
            c.exchange.group = group
            c.exchange.tried = tried
        } else {
            c.exchange.logTarget = -1
        }
        c.plan = plan
        c.listener = listener
        return true
    }

    private func attach(_ c: HTTPConnection, _ u: UpstreamConnection) {
        u.owner = c.slot
        u.runtime = plan(of: c).groups[c.exchange.group].targets[u.target].runtime
        u.runtime?.started()
        c.exchange.logTarget = u.target
        if c.exchange.targetStarted == 0 { c.exchange.targetStarted = now }
        c.exchange.upstream = u
        pickers[c.exchange.group].opened(u.target)
    }

    private func takeUpstream() -> UpstreamConnection {
        let u: UpstreamConnection
        if let slot = freeUpstreamSlots.popLast() {
            u = upstreams[Int(slot)]
        } else {
            u = UpstreamConnection(slot: Int32(upstreams.count))
            upstreams.append(u)
        }
        assert(u.socket == nil && u.owner == -1)
        return u
    }

    private func takePooled(group: Int, target: Int) -> UpstreamConnection? {
        guard group < idlePool.count, target < idlePool[group].count else { return nil }
        while let slot = idlePool[group][target].popLast() {
            let u = upstreams[Int(slot)]
            if now &- u.idleSince > Worker.poolIdleLimit {
                discard(u)
                continue
            }
            return u
        }
        return nil
    }

    /// Closes a target connection and frees its slot.
    func discard(_ u: UpstreamConnection) {
        if let fd = u.socket?.raw {
            fds.unregister(fd)
            u.socket = nil  // closes
        }
        u.owner = -1
        freeUpstreamSlots.append(u.slot)
    }

    /// Ends the exchange's use of its target connection: back to the pool when it can carry
    /// another request, closed otherwise.
    func releaseUpstream(_ c: HTTPConnection, reusable: Bool) {
        guard let u = c.exchange.upstream else { return }
        c.exchange.upstream = nil
        u.runtime?.finished()
        if u.planGeneration == plan.generation { pickers[u.group].closed(u.target) }
        if reusable && !u.connecting && u.planGeneration == plan.generation
            && idlePool[u.group][u.target].count < Worker.poolLimitPerTarget {
            u.owner = -1
            u.idleSince = now
            idlePool[u.group][u.target].append(u.slot)
        } else {
            discard(u)
        }
    }

    func upstreamEvent(_ u: UpstreamConnection, _ events: EpollEvents) {
        guard u.owner >= 0 else {
            // A pooled connection spoke or closed: the target ended it. Drop it. Writability
            // alone is no news: an ACK arriving after the exchange raises an EPOLLOUT edge.
            guard !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) else { return }
            if u.group < idlePool.count, u.target < idlePool[u.group].count,
               let i = idlePool[u.group][u.target].firstIndex(of: u.slot) {
                idlePool[u.group][u.target].remove(at: i)
            }
            discard(u)
            return
        }
        let c = httpConns[Int(u.owner)]
        if u.connecting {
            if !events.isDisjoint(with: [.error, .hangup]) {
                upstreamConnectFailed(c, timedOut: false)
                return
            }
            guard events.contains(.writable) else { return }
            u.connecting = false
            c.exchange.machine.targetConnected()
            armHTTPTimer(c)  // from the connect deadline to the response timeout
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { u.io.noteReadable() }
        if !events.isDisjoint(with: [.readHangup, .hangup, .error]) { u.io.hangup = true }
        if !events.isDisjoint(with: [.writable, .hangup, .error]) { u.io.noteWritable() }
        drive(c)
    }

    func upstreamConnectFailed(_ c: HTTPConnection, timedOut: Bool) {
        guard let u = c.exchange.upstream else { return }
        c.exchange.upstream = nil
        u.runtime?.finished()
        u.runtime?.failed()
        if u.planGeneration == plan.generation { pickers[u.group].closed(u.target) }
        discard(u)
        perform(c, c.exchange.machine.connectFailed(timedOut: timedOut))
        drive(c)
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
        case .failed:
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

    enum StepOutcome { case progressed, idle, failed }

    /// Forwards body bytes of `q` as far as the framing allows.
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
                if body.chunkReady < q.count {
                    let fresh = UnsafeRawBufferPointer(rebasing: q.bytes[body.chunkReady...])
                    switch body.chunks.scan(fresh) {
                    case .consumed(let k): body.chunkReady += k
                    case .finished(let k):
                        body.chunkReady += k
                        body.chunkEnded = true
                    case .error: return .failed
                    }
                }
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
                case .failed:
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

    // MARK: WebSocket tunnel

    /// Bytes both ways after a 101, half-closes passed on; the tunnel ends when both
    /// directions have ended or on an error.
    func tunnel(_ c: HTTPConnection) -> Bool {
        guard let u = c.exchange.upstream else { return false }
        if flush(&c.toClient, to: c.clientFd, transport: c.transport, io: &c.clientIO) == .failed {
            closeTunnel(c)
            return false
        }
        var up = BodyProgress()
        up.framing = .untilClose
        up.done = false
        var down = up
        while true {
            var step = false
            if forwardBody(&up, from: &c.input, to: u.fd, transport: u.transport, io: &u.io, counted: &c.exchange.bytesFromClient) == .failed
                || forwardBody(&down, from: &c.exchange.fromTarget, to: c.clientFd, transport: c.transport, io: &c.clientIO,
                               counted: &c.exchange.bytesToClient) == .failed {
                closeTunnel(c)
                return false
            }
            if c.input.isEmpty && c.clientIO.readable && !c.clientClosed {
                switch readClient(c) {
                case .data: step = true
                case .wait: break
                case .closed: Posix.shutdown(u.fd, how: Posix.shutdownWrite)
                case .failed:
                    closeTunnel(c)
                    return false
                }
            }
            if c.exchange.fromTarget.isEmpty && u.io.readable && !c.exchange.targetFinished {
                if c.exchange.fromTarget.base == nil { c.exchange.fromTarget.base = httpBuffers.acquire() }
                c.exchange.fromTarget.start = 0
                c.exchange.fromTarget.end = 0
                switch u.io.read(u.transport, u.fd, into: c.exchange.fromTarget.base!, count: httpBuffers.bufferSize) {
                case .closed:
                    c.exchange.targetFinished = true
                    Posix.shutdown(c.clientFd, how: Posix.shutdownWrite)
                case .moved(let n):
                    c.exchange.fromTarget.end = n
                    c.lastActivity = now
                    step = true
                case .wait:
                    break
                case .failed:
                    closeTunnel(c)
                    return false
                }
            }
            if c.clientClosed && c.exchange.targetFinished && c.input.isEmpty && c.exchange.fromTarget.isEmpty {
                closeTunnel(c)
                return false
            }
            if !step { return false }
        }
    }

    private func closeTunnel(_ c: HTTPConnection) {
        perform(c, c.exchange.machine.abort())
    }

    // MARK: closing and timers

    func closeHTTP(_ c: HTTPConnection) {
        guard c.state != .free else { return }
        logRequest(c)
        let statsId = plan(of: c).listeners[c.listener].statsId
        if statsId >= 0 { stats.add(StatsBlock.listenerSlot(statsId, StatsBlock.connClosed)) }
        releaseUpstream(c, reusable: false)
        if let fd = c.client?.raw {
            fds.unregister(fd)
            c.client = nil  // closes
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
        activeLocal -= 1
        _ = process.activeConnections.subtract(1, ordering: .relaxed)
    }

    /// When the connection's current wait runs out.
    func httpDeadline(_ c: HTTPConnection) -> UInt64 {
        switch c.state {
        case .free:
            return .max
        case .open:
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
        case .open:
            let readingHead = c.exchange.machine.state == .receivingHead
            let next = c.exchange.machine.timerFired(now: now, policy: policy(of: c), lastActivity: c.lastActivity)
            if readingHead, case .answer = next { captureRejectedForLog(c) }  // 408
            perform(c, next)
            drive(c)
        }
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
