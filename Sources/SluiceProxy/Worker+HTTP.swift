import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP
import SluiceHTTP2
#if canImport(Glibc)
import Glibc
#endif

/// The L7 data path, client side: read and parse request heads, apply desync mitigation and
/// the listener's rules, answer Sluice's own responses, hand forwards to the exchange.
extension Worker {
    /// Takes ownership of an accepted client socket on an `http` listener.
    func openHTTP(client: consuming Descriptor, listener: Int) {
        _ = process.activeConnections.add(1, ordering: .relaxed)
        activeLocal += 1
        let c = takeHTTPConnection(limits: plan.listeners[listener].limits)
        c.generation &+= 1
        c.state = .open
        c.exchange.machine.reset()
        c.plan = plan
        c.listener = listener
        c.logFd = accessLogFds[listener] >= 0 ? accessLogFds[listener] : nil
        let statsId = plan.listeners[listener].statsId
        if statsId >= 0 { stats.add(StatsBlock.listenerSlot(statsId, StatsBlock.connTotal)) }
        let fd = client.raw
        assert(c.client == nil)
        c.client = consume client
        setClientAddress(c, peer)
        c.clientIO = Readiness()
        c.clientIO.writable = true
        c.clientClosed = false
        c.exchange.targetFinished = false
        c.transport = .plain
        c.streamPipe = nil
        c.firstRequest = true
        c.clientCertHeaders.removeAll(keepingCapacity: true)
        c.parser.reset()
        c.lastActivity = now
        c.timerAt = 0
        c.exchange.upstream = nil
        let token = fds.register(fd, owner: .httpClient, index: c.slot)
        do {
            try epoll.add(fd, events: Worker.pollEvents, data: token)
        } catch {
            closeHTTP(c)
            return
        }
        let l = plan.listeners[listener]
        if l.acceptProxy {
            // The PROXY header comes first, before a TLS handshake.
            c.state = .preamble
            c.preambleDeadline = now &+ Worker.preambleTimeout(limit: l.headerTimeout)
            c.clientIO.readable = true  // a sender writes its header right after connecting
            armHTTPTimer(c)
            drive(c)
            return
        }
        if startSession(c) { drive(c) }
    }

    /// The client address the session reports, matches and forwards: the accepted peer, or
    /// the source of an accepted PROXY header.
    private func setClientAddress(_ c: HTTPConnection, _ a: SocketAddress) {
        c.clientAddress = a
        c.clientText = a.withHostText { HTTPWriter.AddressText($0) }
        if let v4 = a.ipv4Address {
            c.sourceFamily = 4
            c.sourceAddress = (UInt64(v4) << 32, 0)  // UInt32 in a UInt64: the shift cannot overflow
        } else if let v6 = a.ipv6Address {
            c.sourceFamily = 6
            c.sourceAddress = v6
        } else {
            c.sourceFamily = 0
            c.sourceAddress = (0, 0)
        }
    }

    /// After the preamble: an `https` listener's handshake (returns true: the machine should
    /// run), else HTTP/1.1 requests (the next readable edge brings one).
    private func startSession(_ c: HTTPConnection) -> Bool {
        let l = plan(of: c).listeners[c.listener]
        if let tls = l.tls {
            guard let stream = tls.makeStream(fd: c.clientFd) else {
                closeHTTP(c)
                return false
            }
            c.transport = .tls(stream)
            c.state = .handshaking
            c.handshakeDeadline = now &+ l.handshakeTimeout
            c.clientIO.readable = true  // the ClientHello is usually there already
            armHTTPTimer(c)
            return true
        }
        c.state = .open
        armHTTPTimer(c)
        return false
    }

    /// The PROXY header of an `accept_proxy_protocol` listener. Returns true when the state
    /// changed and the machine should run again.
    private func readProxyHeader(_ c: HTTPConnection) -> Bool {
        let statsId = plan(of: c).listeners[c.listener].statsId
        switch readPreamble(.proxyHeader, fd: c.clientFd, io: &c.clientIO) {
        case .wait:
            return false
        case .invalid:
            countProxyHeader(StatsBlock.proxyInvalid, statsId: statsId)
            closeHTTP(c)
            return false
        case .done(let carried):
            countProxyHeader(StatsBlock.proxyAccepted, statsId: statsId)
            if let carried { setClientAddress(c, carried.source) }
            c.clientIO.readable = true  // the request may have come with the header
            c.lastActivity = now
            if startSession(c) { return true }
            return c.state == .open
        }
    }

    /// The `https` listener's handshake; once done, ALPN decides: `h2` hands the connection
    /// to an HTTP/2 session, anything else reads HTTP/1.1 requests.
    private func handshake(_ c: HTTPConnection) -> Bool {
        guard case .tls(let s) = c.transport else { return false }
        let l = plan(of: c).listeners[c.listener]
        switch stepClientHandshake(s, io: &c.clientIO, statsId: l.statsId) {
        case .waiting:
            return false
        case .failed:
            closeHTTP(c)
            return false
        case .done:
            c.state = .open
            c.lastActivity = now
            c.clientIO.readable = true  // OpenSSL may hold application data read with the handshake
            if l.forwardsClientCert { c.clientCertHeaders = Worker.clientCertHeaders(s) }
            if s.alpn == .h2 {
                upgradeToHTTP2(c, preface: false)
                return false
            }
            armHTTPTimer(c)
            return true
        }
    }

    func takeHTTPConnection(limits: HTTPLimits) -> HTTPConnection {
        if let slot = freeHTTPSlots.popLast() { return httpConns[Int(slot)] }
        let c = HTTPConnection(slot: Int32(httpConns.count), limits: limits)
        httpConns.append(c)
        return c
    }

    func httpClientEvent(_ c: HTTPConnection, _ events: EpollEvents) {
        if events.contains(.error) || (c.exchange.surgeQueued && !events.isDisjoint(with: [.readHangup, .hangup])) {
            closeHTTP(c)  // an error, or a client that left while its request waited in a surge queue
            return
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) { c.clientIO.noteReadable() }
        if !events.isDisjoint(with: [.readHangup, .hangup]) { c.clientIO.hangup = true }
        if !events.isDisjoint(with: [.writable, .hangup]) { c.clientIO.noteWritable() }
        drive(c)
    }

    /// Runs the connection's state machine until it has to wait for the kernel.
    func drive(_ c: HTTPConnection) {
        var rounds = 0
        while c.state != .free && rounds < 64 {
            rounds += 1
            let progressed: Bool
            switch c.state {
            case .free: return
            case .preamble: progressed = readProxyHeader(c)
            case .handshaking: progressed = handshake(c)
            case .lingering: progressed = linger(c)
            case .open:
                switch c.exchange.machine.state {
                case .idle, .receivingHead: progressed = readHead(c)
                case .connecting, .exchanging: progressed = exchange(c)
                case .answering: progressed = answer(c)
                case .tunnel: progressed = tunnel(c)
                case .routing, .done, .failed, .closed:
                    // Passing states: the worker acts on them at once, a drive never sees one.
                    assertionFailure("exchange left in \(c.exchange.machine.state)")
                    progressed = false
                }
            }
            if !progressed { break }
        }
    }

    // MARK: request heads

    /// Returns true when the state changed and the machine should run again.
    private func readHead(_ c: HTTPConnection) -> Bool {
        while true {
            if !c.input.isEmpty {
                if c.firstRequest {
                    // An HTTP/2 client with prior knowledge (h2c) opens with the preface.
                    switch Worker.matchPreface(c.input.bytes) {
                    case .yes:
                        upgradeToHTTP2(c, preface: true)
                        return false
                    case .maybe:
                        // Not enough bytes to tell yet (a preface prefix): read on, or wait.
                        guard c.clientIO.readable else { return false }
                        switch readClient(c) {
                        case .data, .wait: continue
                        case .closed, .failed:
                            closeHTTP(c)
                            return false
                        }
                    case .no:
                        c.firstRequest = false
                    }
                }
                if c.exchange.machine.state == .idle {
                    c.exchange.machine.headStarted(now: now)
                    armHTTPTimer(c)
                }
                switch c.parser.parse(c.input.bytes) {
                case .complete:
                    handleRequest(c)
                    return true
                case .error(let e):
                    captureRejectedForLog(c)
                    perform(c, c.exchange.machine.headFailed(status: e.status))
                    return true
                case .needMore:
                    break
                }
                if c.input.end == httpBuffers.bufferSize {
                    if c.input.start == 0 {
                        captureRejectedForLog(c)
                        perform(c, c.exchange.machine.headFailed(status: 431))  // a head larger than the buffer
                        return true
                    }
                    c.input.compact()
                }
            }
            guard c.clientIO.readable else { return false }
            switch readClient(c) {
            case .data: continue
            case .wait: return false
            case .closed, .failed:
                closeHTTP(c)
                return false
            }
        }
    }

    enum ReadOutcome { case data, wait, closed, failed }

    enum PrefaceMatch { case yes, maybe, no }

    /// Whether `bytes` start with the HTTP/2 client preface (RFC 9113 §3.4).
    static func matchPreface(_ bytes: UnsafeRawBufferPointer) -> PrefaceMatch {
        let preface = HTTP2.clientPreface
        let n = min(bytes.count, preface.count)
        for i in 0..<n where bytes[i] != preface[i] { return .no }
        return n == preface.count ? .yes : .maybe
    }

    /// Reads from the client into `input`.
    func readClient(_ c: HTTPConnection) -> ReadOutcome {
        if c.input.base == nil { c.input.base = httpBuffers.acquire() }
        if c.input.isEmpty {
            c.input.start = 0
            c.input.end = 0
        }
        let room = httpBuffers.bufferSize - c.input.end
        guard room > 0 else { return .wait }
        // The transport decides when the socket is drained (`clientIO.readable` cleared).
        switch c.clientIO.read(c.transport, c.clientFd, into: c.input.base! + c.input.end, count: room) {
        case .moved(let n):
            c.input.end += n
            c.lastActivity = now
            return .data
        case .wait:
            return .wait
        case .closed:
            c.clientClosed = true
            return .closed
        case .failed:
            return .failed
        }
    }

    private func handleRequest(_ c: HTTPConnection) {
        let head = c.parser.head
        let verdict = head.verdict
        captureForLog(c, head)
        c.exchange.versionMinor = head.versionMinor
        // Each request runs on the newest Plan (until a retry needs another rebase).
        guard rebase(c, withGroup: false) else {
            perform(c, c.exchange.machine.fail(status: 503))  // the listener was removed: finish here
            return
        }
        let l = plan(of: c).listeners[c.listener]
        counters.requests &+= 1
        counters.desync[Int(verdict.klass.rawValue)] &+= 1
        switch c.exchange.machine.admit(method: head.methodKind, framing: head.framing, keepAlive: head.keepAlive,
                                        verdict: verdict, rejectStatus: head.rejectStatus, policy: l.exchangePolicy) {
        case .reject(let status):
            perform(c, .answer(status: status))
            return
        case .route:
            break
        }
        let action = l.rules.map { matchRules($0, c, head) } ?? l.defaultAction
        c.exchange.logAction = action
        switch l.actions[action] {
        case .forward(let groups):
            startExchange(c, head: head, listener: l, groups: groups, choice: action)
        case .respond(let variants):
            let close = c.exchange.machine.answerFromRule()
            let bytes = variants[Int(ConnectionHeader.forAnswer(close: close, versionMinor: head.versionMinor).rawValue)]
            c.input.start += head.headLength
            // The status line is ours (`HTTP/1.1 NNN `): three ASCII digits at 9...11.
            c.exchange.logStatus = Int(bytes[9] &- 48) * 100 + Int(bytes[10] &- 48) * 10 + Int(bytes[11] &- 48)
            queueToClient(c, bytes)
        case .redirect(let template):
            sendRedirect(c, template, head, proto: l.proto, port: l.port, close: c.exchange.machine.answerFromRule())
        }
    }

    /// Writes a redirect for the request in `head` straight into `toClient`; a Location
    /// longer than `RedirectTemplate.maxLocation` answers 414 instead.
    private func sendRedirect(_ c: HTTPConnection, _ template: RedirectTemplate, _ head: HTTPRequestHead,
                              proto: StaticString, port: UInt16, close: Bool) {
        if c.toClient.base == nil { c.toClient.base = httpBuffers.acquire() }
        if c.toClient.isEmpty {
            c.toClient.start = 0
            c.toClient.end = 0
        }
        let out = UnsafeMutableRawBufferPointer(start: c.toClient.base! + c.toClient.end,
                                                count: httpBuffers.bufferSize - c.toClient.end)
        let connection = ConnectionHeader.forAnswer(close: close, versionMinor: head.versionMinor)
        guard let n = template.write(for: head, source: c.input.bytes, proto: proto, listenerPort: port, connection: connection,
                                     into: out) else {
            perform(c, c.exchange.machine.fail(status: RedirectTemplate.tooLongStatus))
            return
        }
        c.toClient.end += n
        c.exchange.bytesToClient &+= UInt64(n)
        c.input.start += head.headLength
        c.exchange.logStatus = template.status
    }

    /// Writes one of Sluice's own error responses (the machine is in `.answering(.error)`);
    /// the session closes after it, so nothing more is read from this client.
    func writeAnswer(_ c: HTTPConnection, status: Int) {
        counters.ownResponses &+= 1
        c.exchange.logStatus = status
        c.exchange.ownAnswer = true
        c.streamPipe?.ownAnswer = true  // an HTTP/2 stream: gRPC clients get a grpc-status
        c.input.start = c.input.end
        queueToClient(c, c.exchange.retryAfter ? CannedResponse.retryLater : CannedResponse.bytes(status: status, close: true))
    }

    func queueToClient(_ c: HTTPConnection, _ bytes: [UInt8]) {
        c.exchange.bytesToClient &+= UInt64(bytes.count)
        if c.toClient.base == nil { c.toClient.base = httpBuffers.acquire() }
        if c.toClient.isEmpty {
            c.toClient.start = 0
            c.toClient.end = 0
        }
        let n = min(bytes.count, httpBuffers.bufferSize - c.toClient.end)
        bytes.withUnsafeBytes { c.toClient.base!.advanced(by: c.toClient.end).copyMemory(from: $0.baseAddress!, byteCount: n) }
        c.toClient.end += n
    }

    private func answer(_ c: HTTPConnection) -> Bool {
        switch flush(&c.toClient, to: c.clientFd, transport: c.transport, io: &c.clientIO) {
        case .failed:
            perform(c, c.exchange.machine.abort())
            return false
        case .pending:
            return false
        case .done:
            break
        }
        perform(c, c.exchange.machine.answerWritten())
        return c.state != .free
    }

    /// How long a lingering close reads and drops what the client still sends.
    static let lingerNanos: UInt64 = 2_000_000_000

    func startLingering(_ c: HTTPConnection) {
        logRequest(c)
        c.transport.shutdownWrite(c.clientFd)
        c.state = .lingering
        c.lastActivity = now
        armHTTPTimer(c)
    }

    private func linger(_ c: HTTPConnection) -> Bool {
        while c.clientIO.readable {
            c.input.start = 0
            c.input.end = 0
            switch readClient(c) {
            case .data: continue
            case .wait: return false
            case .closed, .failed:
                closeHTTP(c)
                return false
            }
        }
        return false
    }

    func beginNextRequest(_ c: HTTPConnection) {
        logRequest(c)
        c.exchange.machine.reset()
        c.parser.reset()
        c.lastActivity = now
        if c.input.isEmpty, let b = c.input.base {
            httpBuffers.release(b)
            c.input = ByteQueue()
        }
        armHTTPTimer(c)
    }

    enum FlushOutcome { case done, pending, failed }

    /// Writes a queue out through `transport`; releases its buffer once empty.
    func flush(_ q: inout ByteQueue, to fd: Int32, transport: Transport, io: inout Readiness,
               release: Bool = true) -> FlushOutcome {
        while !q.isEmpty {
            guard io.writable else { return .pending }
            switch io.write(transport, fd, from: q.base! + q.start, count: q.count) {
            case .moved(let n): q.start += n
            case .wait: break
            case .closed, .failed: return .failed
            }
        }
        if release, let b = q.base {
            httpBuffers.release(b)
            q = ByteQueue()
        }
        return .done
    }

    /// Runs the rule table on the request; header views go to the worker's reusable scratch.
    private func matchRules(_ rules: RuleTable, _ c: HTTPConnection, _ head: HTTPRequestHead) -> Int {
        let bytes = c.input.bytes
        @inline(__always) func slice(_ r: ByteRange) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[Int(r.start)..<r.end])
        }
        factHeaders.removeAll(keepingCapacity: true)
        for h in head.headers { factHeaders.append((name: slice(h.name), value: slice(h.value))) }
        var host = head.host.map(slice) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        host = Worker.stripPort(host)
        return factHeaders.withUnsafeBufferPointer { headers in
            rules.match(RequestFacts(method: slice(head.method), host: host, path: slice(head.path),
                                     query: slice(head.query), headers: headers, sourceFamily: c.sourceFamily,
                                     sourceAddress: c.sourceAddress))
        }
    }

    /// `host[:port]` → `host`; `[v6]:port` → `[v6]`.
    static func stripPort(_ host: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let last = host.lastIndex(where: { $0 == UInt8(ascii: ":") }) else { return host }
        if host.first == UInt8(ascii: "["), host[..<last].last != UInt8(ascii: "]") { return host }
        return UnsafeRawBufferPointer(rebasing: host[..<last])
    }

    func plan(of c: HTTPConnection) -> Plan { c.plan ?? plan }
}
