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
        c.group = groups.count == 1 ? groups[0].group : groups[actionChoosers[c.listener][choice].next() ?? 0].group
        c.methodKind = head.methodKind
        c.tried = TriedTargets()
        c.connectFailures = 0
        c.timedOutConnects = 0
        c.responseParser.reset()
        c.responseHeadDone = false
        c.responseStarted = false
        c.request.begin(head.framing)
        c.forwarded = true
        c.keyHash = requestKeyHash(c, head, p.groups[c.group])
        // The rewritten head goes to `toTarget`; the original head leaves `input`.
        if c.toTarget.base == nil { c.toTarget.base = httpBuffers.acquire() }
        c.toTarget.start = 0
        let options = HTTPWriter.ForwardOptions(xff: l.xff, clientAddress: c.clientText, proto: "http", port: l.port,
                                                traceID: nextTraceID(), keepAliveToTarget: true)
        let written = HTTPWriter.writeUpstreamHead(
            head, source: c.input.bytes,
            into: UnsafeMutableRawBufferPointer(start: c.toTarget.base!, count: httpBuffers.bufferSize),
            options: options)
        guard let n = written else {
            respond(c, status: 431, close: true)
            return
        }
        c.toTarget.end = n
        c.input.start += head.headLength
        c.state = .exchanging
        c.exchangeStarted = now
        c.deadline = 0
        connectUpstream(c)
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
        c.keyMissing = false
        c.stickyTarget = -1
        if let sticky = g.sticky, let v = Worker.cookie(g.stickyCookie, in: head, source) {
            // c.group indexes this worker's Plan (the request was rebased onto it).
            let weights = c.group < groupWeights.count ? groupWeights[c.group].weights : []
            if let t = sticky.target(forCookie: v), t < weights.count, weights[t] > 0 { c.stickyTarget = t }
        }
        switch g.algorithm {
        case .roundRobin, .leastOutstanding, .randomTwo:
            return 0  // not keyed
        case .headerHash:
            for h in head.headers where Worker.equalsLowercased(source, h.name, g.hashKey) {
                return StableHash.hash(UnsafeRawBufferPointer(rebasing: source[Int(h.value.start)..<h.value.end]))
            }
            c.keyMissing = true
            return 0
        case .cookieHash:
            if let v = Worker.cookie(g.hashKey, in: head, source) { return StableHash.hash(v) }
            c.keyMissing = true
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
    /// Answers 502/504/503 when no target can be had.
    func connectUpstream(_ c: HTTPConnection) {
        // A new Plan arrived mid-request (health change, reload): pick from it. When the
        // listener or group is gone, nothing was sent to the client yet (a retry happens only
        // before the response began): answer 503 on the old Plan and close.
        guard rebase(c, withGroup: true) else {
            respond(c, status: 503, close: true)
            return
        }
        let p = plan(of: c)
        let group = p.groups[c.group]
        while c.tried.count < Worker.maxConnectAttempts {
            let pick: Int?
            if c.stickyTarget >= 0 && !c.tried.contains(c.stickyTarget) {
                pick = c.stickyTarget
            } else if c.keyMissing {
                pick = pickers[c.group].pickRoundRobin(excluding: c.tried)
            } else if let r = groupWeights[c.group].rotation {
                pick = r.next(excluding: c.tried)
            } else {
                pick = pickers[c.group].pick(hash: c.keyHash, excluding: c.tried)
            }
            guard let t = pick else { break }
            c.tried.insert(t)
            if let u = takePooled(group: c.group, target: t) {
                attach(c, u)
                return
            }
            let address = group.targets[t].address
            guard let fd = try? Socket.tcp(for: address) else { break }
            Socket.setNoDelay(fd)
            let u = takeUpstream()
            u.fd = fd
            u.group = c.group
            u.target = t
            u.planGeneration = p.generation
            u.readable = false
            u.writable = false
            u.hangup = false
            let token = fds.register(fd, owner: .upstream, index: u.slot)
            do {
                try epoll.add(fd, events: Worker.pollEvents, data: token)
                switch try Socket.connect(fd, to: address) {
                case .connected:
                    u.connecting = false
                    u.writable = true
                case .inProgress:
                    u.connecting = true
                }
            } catch {
                discard(u)
                group.targets[t].runtime.failed()
                c.connectFailures += 1
                continue
            }
            attach(c, u)
            if u.connecting {
                c.deadline = now &+ p.listeners[c.listener].connectTimeout
                armHTTPTimer(c)
            }
            return
        }
        // No target could be picked before any was tried (none listed, all draining or at
        // weight 0): 503. Targets were tried and failed: 504 if one timed out, else 502.
        respond(c, status: c.tried.count == 0 ? 503 : (c.timedOutConnects > 0 ? 504 : 502), close: true)
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
            guard let (group, tried) = plan.rebase(group: c.group, tried: c.tried, from: old) else { return false }
            let targets = plan.groups[group].targets
            func map(_ t: Int) -> Int {
                guard t >= 0, t < old.groups[c.group].targets.count else { return -1 }
                let key = old.groups[c.group].targets[t].key
                return targets.firstIndex { $0.key == key } ?? -1
            }
            let sticky = map(c.stickyTarget)
            // The worker's weights are for `plan`, the Plan the connection moves to.
            let weights = group < groupWeights.count ? groupWeights[group].weights : []
            c.stickyTarget = sticky >= 0 && sticky < weights.count && weights[sticky] > 0 ? sticky : -1
            c.logTarget = map(c.logTarget)
            c.group = group
            c.tried = tried
        } else {
            c.logTarget = -1
        }
        c.plan = plan
        c.listener = listener
        return true
    }

    private func attach(_ c: HTTPConnection, _ u: UpstreamConnection) {
        u.owner = c.slot
        u.runtime = plan(of: c).groups[c.group].targets[u.target].runtime
        u.runtime?.started()
        c.logTarget = u.target
        if c.targetStarted == 0 { c.targetStarted = now }
        c.upstream = u
        pickers[c.group].opened(u.target)
    }

    private func takeUpstream() -> UpstreamConnection {
        let u: UpstreamConnection
        if let slot = freeUpstreamSlots.popLast() {
            u = upstreams[Int(slot)]
        } else {
            u = UpstreamConnection(slot: Int32(upstreams.count))
            upstreams.append(u)
        }
        u.generation &+= 1
        u.owner = -1
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
        if u.fd >= 0 {
            fds.unregister(u.fd)
            Posix.close(u.fd)
            u.fd = -1
        }
        u.owner = -1
        u.generation &+= 1
        freeUpstreamSlots.append(u.slot)
    }

    /// Ends the exchange's use of its target connection: back to the pool when it can carry
    /// another request, closed otherwise.
    func releaseUpstream(_ c: HTTPConnection, reusable: Bool) {
        guard let u = c.upstream else { return }
        c.upstream = nil
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
            c.deadline = 0
            armHTTPTimer(c)  // from the connect deadline to the response timeout
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) { u.readable = true }
        if !events.isDisjoint(with: [.readHangup, .hangup, .error]) { u.hangup = true }
        if !events.isDisjoint(with: [.writable, .hangup, .error]) { u.writable = true }
        drive(c)
    }

    func upstreamConnectFailed(_ c: HTTPConnection, timedOut: Bool) {
        guard let u = c.upstream else { return }
        c.upstream = nil
        u.runtime?.finished()
        u.runtime?.failed()
        if u.planGeneration == plan.generation { pickers[u.group].closed(u.target) }
        discard(u)
        c.connectFailures += 1
        if timedOut { c.timedOutConnects += 1 }
        c.deadline = 0
        connectUpstream(c)
        drive(c)
    }

    // MARK: the exchange

    /// One step of forwarding. Returns true when the state changed.
    func exchange(_ c: HTTPConnection) -> Bool {
        guard let u = c.upstream else { return false }
        if u.connecting { return false }
        var progressed = false
        // Request: rewritten head, then body bytes from `input`.
        switch flush(&c.toTarget, to: u.fd, writable: &u.writable, release: false) {
        case .failed: return targetFailed(c)
        case .pending: break
        case .done:
            switch forwardBody(&c.request, from: &c.input, to: u.fd, writable: &u.writable, counted: &c.bytesFromClient) {
            case .failed: return targetFailed(c)
            case .progressed: progressed = true
            case .idle: break
            }
            let limit = plan(of: c).listeners[c.listener].maxRequestBody
            if limit > 0, c.request.framing == .chunked, c.request.chunks.dataBytes > limit {
                // A chunked body crossed max_request_body: the target gets a cut-off body
                // on a connection that is closed, never reused.
                releaseUpstream(c, reusable: false)
                closeHTTP(c)
                return false
            }
            if !c.request.done && c.input.isEmpty && c.clientReadable {
                switch readClient(c) {
                case .data: progressed = true
                case .wait: break
                case .closed, .failed:
                    // The client left in the middle of its request body.
                    releaseUpstream(c, reusable: false)
                    closeHTTP(c)
                    return false
                }
            }
        }
        // Response: head, then body, to the client.
        switch pumpResponse(c, u) {
        case .failed:
            // Already handled; a retry may have ended in an answer of Sluice's own, which the
            // state machine must go on to write (no new event will ask for it).
            return c.state != .exchanging
        case .progressed:
            progressed = true
        case .idle:
            break
        }
        if c.state != .exchanging { return true }
        if c.request.done && c.toTarget.isEmpty && c.responseHeadDone
            && c.response.done && c.toClient.isEmpty {
            finishExchange(c)
            return true
        }
        return progressed
    }

    enum StepOutcome { case progressed, idle, failed }

    /// Forwards body bytes of `q` as far as the framing allows.
    func forwardBody(_ body: inout BodyProgress, from q: inout ByteQueue, to fd: Int32,
                     writable: inout Bool, counted: inout UInt64) -> StepOutcome {
        var moved = false
        while !body.done && !q.isEmpty && writable {
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
            do {
                switch try Posix.write(fd, from: q.base! + q.start, count: n) {
                case .processed(let w):
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
                case .wouldBlock:
                    writable = false
                }
            } catch {
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
            switch flush(&c.toClient, to: c.client, writable: &c.clientWritable) {
            case .failed:
                releaseUpstream(c, reusable: false)
                closeHTTP(c)
                return .failed
            case .pending:
                return moved ? .progressed : .idle
            case .done: break
            }
            if c.responseHeadDone {
                switch forwardBody(&c.response, from: &c.fromTarget, to: c.client, writable: &c.clientWritable,
                                 counted: &c.bytesToClient) {
                case .failed:
                    releaseUpstream(c, reusable: false)
                    closeHTTP(c)
                    return .failed
                case .progressed: moved = true
                case .idle: break
                }
                if c.response.done || !c.fromTarget.isEmpty { return moved ? .progressed : .idle }
            } else if !c.fromTarget.isEmpty {
                switch c.responseParser.parse(c.fromTarget.bytes, requestMethod: c.methodKind) {
                case .complete:
                    guard handleResponseHead(c, u) else { return .failed }
                    if c.state == .tunnel { return .progressed }  // the rest is tunnel bytes
                    moved = true
                    continue
                case .error:
                    badGateway(c, status: 502)
                    return .failed
                case .needMore:
                    if c.fromTarget.end == httpBuffers.bufferSize {
                        if c.fromTarget.start == 0 {
                            badGateway(c, status: 502)
                            return .failed
                        }
                        c.fromTarget.compact()
                    }
                }
            }
            // In: more from the target.
            guard u.readable else { return moved ? .progressed : .idle }
            if c.fromTarget.base == nil { c.fromTarget.base = httpBuffers.acquire() }
            let room = httpBuffers.bufferSize - c.fromTarget.end
            if room == 0 { return moved ? .progressed : .idle }
            do {
                switch try Posix.read(u.fd, into: c.fromTarget.base! + c.fromTarget.end, count: room) {
                case .processed(0):
                    if c.responseHeadDone && c.response.framing == .untilClose {
                        c.response.done = true
                        c.closeAfterResponse = true
                        c.upstreamReusable = false
                        return .progressed
                    }
                    _ = targetFailed(c)  // a truncated response must not pass as whole
                    return .failed
                case .processed(let n):
                    c.fromTarget.end += n
                    c.lastActivity = now
                    moved = true
                    if n < room && !u.hangup { u.readable = false }  // drained: see readClient
                case .wouldBlock:
                    u.readable = false
                }
            } catch {
                _ = targetFailed(c)
                return .failed
            }
        }
    }

    /// A complete response head is in `fromTarget`. Returns false if the exchange ended.
    private func handleResponseHead(_ c: HTTPConnection, _ u: UpstreamConnection) -> Bool {
        let head = c.responseParser.head
        c.responseStarted = true
        if head.isInformational {
            // 100 Continue and friends pass through as they are; the real head follows.
            queueToClient(c, Array(UnsafeRawBufferPointer(rebasing: c.fromTarget.bytes[..<head.headLength])))
            c.fromTarget.start += head.headLength
            c.responseParser.reset()
            return true
        }
        if !head.keepAlive { c.upstreamReusable = false }
        if head.isUpgrade {
            queueToClient(c, Array(UnsafeRawBufferPointer(rebasing: c.fromTarget.bytes[..<head.headLength])))
            c.fromTarget.start += head.headLength
            c.upstreamReusable = false
            c.state = .tunnel
            c.deadline = 0
            return true
        }
        if c.toClient.base == nil { c.toClient.base = httpBuffers.acquire() }
        if c.toClient.isEmpty {
            c.toClient.start = 0
            c.toClient.end = 0
        }
        let out = UnsafeMutableRawBufferPointer(start: c.toClient.base! + c.toClient.end,
                                                count: httpBuffers.bufferSize - c.toClient.end)
        let close = c.closeAfterResponse || head.framing == .untilClose
        guard let n = HTTPWriter.writeDownstreamHead(head, source: c.fromTarget.bytes, into: out, close: close,
                                                     clientVersionMinor: c.versionMinor) else {
            badGateway(c, status: 502)
            return false
        }
        if close { c.closeAfterResponse = true }
        c.toClient.end += n
        c.bytesToClient &+= UInt64(n)
        let g = plan(of: c).groups[c.group]
        if let sticky = g.sticky, n >= 2 {
            // Insert the stickiness cookie before the head's final CRLF.
            c.toClient.end -= 2
            let line = "set-cookie: " + String(decoding: g.stickyCookie, as: UTF8.self) + "="
                + sticky.cookieValue(for: u.target) + "; Max-Age=\(g.stickySeconds); Path=/\r\n\r\n"
            queueToClient(c, Array(line.utf8))
        }
        c.fromTarget.start += head.headLength
        c.response.begin(head.framing)
        c.responseHeadDone = true
        c.logStatus = head.status
        if head.status >= 500 { u.runtime?.failed() } else { u.runtime?.succeeded() }
        // Stickiness puts its cookie in `toClient` behind the head; bodies follow it.
        if case .contentLength = head.framing { coalesceBody(c) }
        c.deadline = 0
        armHTTPTimer(c)
        counters.responses &+= 1
        return true
    }

    /// The target failed before the response began: 502, or a plain close once it began.
    /// Copies the start of a Content-Length body that arrived with the head behind the
    /// rewritten head, so head and a small body leave in one write.
    private func coalesceBody(_ c: HTTPConnection) {
        let room = httpBuffers.bufferSize - c.toClient.end
        let n = Int(min(UInt64(min(c.fromTarget.count, room)), c.response.remaining))
        guard n > 0, n <= Worker.coalesceLimit else { return }
        (c.toClient.base! + c.toClient.end).copyMemory(from: c.fromTarget.base! + c.fromTarget.start, byteCount: n)
        c.toClient.end += n
        c.fromTarget.start += n
        c.response.remaining -= UInt64(n)
        c.bytesToClient &+= UInt64(n)
        if c.response.remaining == 0 { c.response.done = true }
    }

    /// Largest body copied behind a response head (bigger ones are written from their buffer).
    static let coalesceLimit = 16 * 1024

    /// The target failed: a plain close once the response began; before that a replay on
    /// another target when `retry_idempotent` allows it (idempotent method, no body, tries
    /// left), else 502.
    private func targetFailed(_ c: HTTPConnection) -> Bool {
        if c.responseStarted {
            releaseUpstream(c, reusable: false)
            closeHTTP(c)
            return false
        }
        let l = plan(of: c).listeners[c.listener]
        if l.retryIdempotent && c.methodKind.isIdempotent && c.request.framing == .none
            && c.tried.count < Worker.maxConnectAttempts && c.toTarget.base != nil {
            releaseUpstream(c, reusable: false)
            c.toTarget.start = 0  // the head is kept until the exchange ends
            c.fromTarget.start = 0
            c.fromTarget.end = 0
            c.responseParser.reset()
            counters.retries &+= 1
            connectUpstream(c)
            return true  // exchanging with a new target, or answering 502/503/504: run again
        }
        badGateway(c, status: 502)
        return false
    }

    func badGateway(_ c: HTTPConnection, status: Int) {
        releaseUpstream(c, reusable: false)
        c.fromTarget.start = c.fromTarget.end
        respond(c, status: status, close: true)
        drive(c)
    }

    private func finishExchange(_ c: HTTPConnection) {
        let reusable = c.upstreamReusable && c.fromTarget.isEmpty
        releaseUpstream(c, reusable: reusable)
        if let b = c.fromTarget.base {
            httpBuffers.release(b)
            c.fromTarget = ByteQueue()
        }
        if let b = c.toTarget.base {
            httpBuffers.release(b)
            c.toTarget = ByteQueue()
        }
        if c.closeAfterResponse {
            closeHTTP(c)
            return
        }
        beginNextRequest(c)
    }

    // MARK: WebSocket tunnel

    /// Bytes both ways after a 101, half-closes passed on; the tunnel ends when both
    /// directions have ended or on an error.
    func tunnel(_ c: HTTPConnection) -> Bool {
        guard let u = c.upstream else { return false }
        if flush(&c.toClient, to: c.client, writable: &c.clientWritable) == .failed {
            closeTunnel(c)
            return false
        }
        var up = BodyProgress()
        up.framing = .untilClose
        up.done = false
        var down = up
        while true {
            var step = false
            if forwardBody(&up, from: &c.input, to: u.fd, writable: &u.writable, counted: &c.bytesFromClient) == .failed
                || forwardBody(&down, from: &c.fromTarget, to: c.client, writable: &c.clientWritable,
                               counted: &c.bytesToClient) == .failed {
                closeTunnel(c)
                return false
            }
            if c.input.isEmpty && c.clientReadable && !c.clientClosed {
                switch readClient(c) {
                case .data: step = true
                case .wait: break
                case .closed: Posix.shutdown(u.fd, how: Posix.shutdownWrite)
                case .failed:
                    closeTunnel(c)
                    return false
                }
            }
            if c.fromTarget.isEmpty && u.readable && !c.targetClosed {
                if c.fromTarget.base == nil { c.fromTarget.base = httpBuffers.acquire() }
                c.fromTarget.start = 0
                c.fromTarget.end = 0
                do {
                    switch try Posix.read(u.fd, into: c.fromTarget.base!, count: httpBuffers.bufferSize) {
                    case .processed(0):
                        c.targetClosed = true
                        Posix.shutdown(c.client, how: Posix.shutdownWrite)
                    case .processed(let n):
                        c.fromTarget.end = n
                        c.lastActivity = now
                        step = true
                    case .wouldBlock:
                        u.readable = false
                    }
                } catch {
                    closeTunnel(c)
                    return false
                }
            }
            if c.clientClosed && c.targetClosed && c.input.isEmpty && c.fromTarget.isEmpty {
                closeTunnel(c)
                return false
            }
            if !step { return false }
        }
    }

    private func closeTunnel(_ c: HTTPConnection) {
        releaseUpstream(c, reusable: false)
        closeHTTP(c)
    }

    // MARK: closing and timers

    func closeHTTP(_ c: HTTPConnection) {
        guard c.state != .free else { return }
        logRequest(c)
        let statsId = plan(of: c).listeners[c.listener].statsId
        if statsId >= 0 { stats.add(StatsBlock.listenerSlot(statsId, StatsBlock.connClosed)) }
        releaseUpstream(c, reusable: false)
        if c.client >= 0 {
            fds.unregister(c.client)
            Posix.close(c.client)
            c.client = -1
        }
        for q in [c.input, c.toClient, c.toTarget, c.fromTarget] {
            if let b = q.base { httpBuffers.release(b) }
        }
        c.input = ByteQueue()
        c.toClient = ByteQueue()
        c.toTarget = ByteQueue()
        c.fromTarget = ByteQueue()
        c.state = .free
        c.plan = nil
        c.generation &+= 1
        freeHTTPSlots.append(c.slot)
        activeLocal -= 1
        _ = process.activeConnections.subtract(1, ordering: .relaxed)
    }

    /// When the connection's current wait runs out.
    func httpDeadline(_ c: HTTPConnection) -> UInt64 {
        let l = plan(of: c).listeners[c.listener]
        switch c.state {
        case .free:
            return .max
        case .readingHead:
            return c.requestStarted == 0 ? c.lastActivity &+ l.idleTimeout : c.requestStarted &+ l.headerTimeout
        case .exchanging:
            if c.deadline != 0 { return c.deadline }  // connecting
            if !c.responseHeadDone { return c.exchangeStarted &+ l.responseTimeout }
            return c.lastActivity &+ l.idleTimeout
        case .answering, .tunnel:
            return c.lastActivity &+ l.idleTimeout
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
        case .readingHead:
            if c.requestStarted == 0 {
                closeHTTP(c)  // keep-alive idle
            } else {
                captureRejectedForLog(c)
                respond(c, status: 408, close: true)
                drive(c)
            }
        case .exchanging:
            if c.deadline != 0 {
                upstreamConnectFailed(c, timedOut: true)
            } else if !c.responseHeadDone {
                badGateway(c, status: 504)
            } else {
                closeHTTP(c)
            }
        case .answering, .tunnel, .lingering:
            closeHTTP(c)
        }
    }
}
