import SluiceBalancer
import SluiceConfig
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// The L4 TCP data path: run the preamble, open a target connection, move bytes both ways
/// through each side's `Transport`, pass half-closes on, close. Sockets are registered
/// edge-triggered for reading and writing once; readiness is remembered in the connection
/// and cleared only when the kernel (or the transport) says the socket is empty or full.
extension Worker {
    static let pollEvents: EpollEvents = [.readable, .writable, .readHangup, .edgeTriggered]

    /// Takes ownership of an accepted client socket.
    func open(client: consuming Descriptor, listener: Int) {
        _ = process.activeConnections.add(1, ordering: .relaxed)
        activeLocal += 1
        let c = takeConnection()
        let fd = client.raw
        c.reset(client: client, peer: peer, plan: plan, listener: listener, now: now)
        c.logFd = listener < accessLogFds.count ? accessLogFds[listener] : -1
        let token = fds.register(fd, owner: .clientSide, index: c.slot)
        do {
            try epoll.add(fd, events: Worker.pollEvents, data: token)
        } catch {
            close(c)
            return
        }
        let l = plan.listeners[listener]
        if l.statsId >= 0 { stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.connTotal)) }
        c.flowHash = peer.withAddressBytes { StableHash.hash($0, seed: l.hashSeed) }
        c.group = chooseGroup(listener: listener, forward: l.forward)
        if c.preamble.readsInput {
            c.clientReady.readable = true  // a sender writes its header right after connecting
            armTimer(c)
        }
        runPreamble(c)
    }

    /// The preamble phase, first of all (before a `tls` listener's handshake): feeds the
    /// listener's `Preamble` until it is done, then starts the handshake or connects to a
    /// target. A preamble that reads nothing completes at once, before any byte is read. A
    /// PROXY header is peeked and then consumed exactly, so the payload stays in the socket.
    func runPreamble(_ c: TCPConnection) {
        assert(c.state == .preamble)
        guard c.preamble.readsInput, let l = c.plan?.listeners[c.listener] else {
            afterPreamble(c)
            return
        }
        switch readPreamble(c.preamble, fd: c.clientFd, io: &c.clientReady) {
        case .wait:
            return  // the preamble deadline is armed
        case .invalid:
            countProxyHeader(StatsBlock.proxyInvalid, statsId: l.statsId)
            c.preamble = .none  // counted: close() does not count a timeout on top
            c.end = .proxyHeaderInvalid
            close(c)
        case .done(let carried):
            countProxyHeader(StatsBlock.proxyAccepted, statsId: l.statsId)
            if let carried {
                c.clientAddress = carried.source
                c.carriedDestination = carried.destination
                c.flowHash = carried.source.withAddressBytes { StableHash.hash($0, seed: l.hashSeed) }
            }
            c.clientReady.readable = true  // payload may have come with the header
            c.lastActivity = now
            afterPreamble(c)
        }
    }

    /// The preamble is done: a `tls` listener's handshake with the client, else the target.
    private func afterPreamble(_ c: TCPConnection) {
        guard let l = c.plan?.listeners[c.listener] else { return }
        if let tls = l.tls {
            guard let stream = tls.makeStream(fd: c.clientFd) else {
                close(c)
                return
            }
            c.clientTransport = .tls(stream)
            c.state = .handshaking
            c.handshakeDeadline = now &+ l.handshakeTimeout
            c.clientReady.readable = true  // the ClientHello is usually there already
            c.clientReady.writable = true
            armTimer(c)
            clientHandshake(c)
            return
        }
        c.state = .connecting
        armTimer(c)
        connectNext(c)
    }

    /// A `tls` listener's handshake with the client; then the target.
    private func clientHandshake(_ c: TCPConnection) {
        guard case .tls(let s) = c.clientTransport, let l = c.plan?.listeners[c.listener] else { return }
        switch stepClientHandshake(s, io: &c.clientReady, statsId: l.statsId) {
        case .waiting:
            return
        case .failed:
            close(c)
        case .done:
            c.clientReady.readable = true  // OpenSSL may hold bytes read with the handshake
            c.clientReady.writable = true
            c.state = .connecting
            c.lastActivity = now
            armTimer(c)
            connectNext(c)
        }
    }

    /// A `tls` group: TLS to the target once its TCP connect completed. `true` when the
    /// connection can carry bytes (handshake done or a plain group).
    private func targetHandshake(_ c: TCPConnection) -> Bool {
        guard let p = c.plan, let context = p.groups[c.group].tls else { return true }
        if !c.serverHandshaking {
            guard sendProxyHeaderBeforeTLS(c) else {
                connectFailed(c)
                return false
            }
            guard let s = context.makeStream(fd: c.serverFd, serverName: p.groups[c.group].serverName) else {
                connectFailed(c)
                return false
            }
            c.serverTransport = .tls(s)
            c.serverHandshaking = true
            c.serverReady.readable = true
            c.serverReady.writable = true
        }
        guard case .tls(let s) = c.serverTransport else { return true }
        switch stepTargetHandshake(s, io: &c.serverReady) {
        case .waiting:
            return false
        case .failed:
            connectFailed(c)
            return false
        case .done:
            c.serverHandshaking = false
            c.serverReady.readable = true
            c.serverReady.writable = true
            return true
        }
    }

    private func takeConnection() -> TCPConnection {
        if let slot = freeSlots.popLast() { return conns[Int(slot)] }
        let c = TCPConnection(slot: Int32(conns.count))
        conns.append(c)
        return c
    }

    @inline(__always)
    private func chooseGroup(listener: Int, forward: [WeightedGroup]) -> Int {
        if forward.count == 1 { return forward[0].group }
        return forward[groupChoosers[listener].next() ?? 0].group
    }

    /// Opens a connection to the next untried target, or closes the client when the group
    /// has none left (or the attempts are used up).
    func connectNext(_ c: TCPConnection) {
        guard rebaseTCP(c) else {
            c.end = .noTarget
            close(c)
            return
        }
        guard let plan = c.plan else { return }
        let turn = c.surgeTurn
        c.surgeTurn = false
        // First in, first out: while others wait, a new connection queues behind them.
        if !turn, c.tried.count == 0, c.heldTarget < 0, plan.groups[c.group].surgeHasWaiters, let q = plan.groups[c.group].surge {
            enqueue(c, q, atHead: false)
            return
        }
        let holds = plan.groups[c.group].maxPerTarget > 0
        while true {
            // A slot handed over from the surge queue, else the next untried target.
            let held = c.heldTarget
            let attempt = held >= 0
                ? connectTarget(group: c.group, target: held, tried: &c.tried, owner: .targetSide, index: c.slot)
                : connectUntried(group: c.group, tried: &c.tried, choice: TargetChoice(hash: c.flowHash),
                                 owner: .targetSide, index: c.slot)
            if held < 0 && holds && attempt.pickedTarget >= 0 { c.heldTarget = attempt.pickedTarget }
            switch consume attempt {
            case .connected(let t, let socket):
                attachServer(c, target: t, socket: socket)
                if plan.groups[c.group].tls != nil {
                    c.state = .connecting
                    c.connectDeadline = now &+ plan.listeners[c.listener].connectTimeout
                    armTimer(c)
                    if targetHandshake(c) { established(c) }
                    return
                }
                established(c)
                return
            case .inProgress(let t, let socket):
                attachServer(c, target: t, socket: socket)
                c.state = .connecting
                c.connectDeadline = now &+ plan.listeners[c.listener].connectTimeout
                armTimer(c)
                return
            case .failed:
                releaseHeld(c)
                continue
            case .exhausted:
                // Every eligible target full, or none to pick, before any was tried: wait in
                // the group's queue when it has one.
                if c.tried.count == 0, let q = plan.groups[c.group].surge {
                    enqueue(c, q, atHead: turn)
                    return
                }
                c.end = c.tried.count == 0 ? .noTarget : .connectFailed
                refuse(c)
                return
            case .noSocket:
                releaseHeld(c)
                c.end = .connectFailed
                close(c)
                return
            }
        }
    }

    /// Moves a connection onto the worker's current Plan (group by name, tried targets by
    /// address) if it runs on an older one. False when its group is gone.
    func rebaseTCP(_ c: TCPConnection) -> Bool {
        guard let old = c.plan, old !== self.plan else { return true }
        // A new Plan arrived between tries (health change, reload): continue on it.
        guard let r = self.plan.rebase(group: c.group, tried: c.tried, from: old) else { return false }
        (c.group, c.tried) = r
        c.plan = self.plan
        c.listener = self.plan.listeners.firstIndex { $0.name == old.listeners[c.listener].name } ?? 0
        return true
    }

    @inline(__always)
    private func attachServer(_ c: TCPConnection, target t: Int, socket: consuming Descriptor) {
        c.server = consume socket
        c.serverTransport = .plain
        c.target = t
        pickers[c.group].opened(t)
        if c.heldTarget == t {
            c.heldTarget = -1
            plan.groups[c.group].targets[t].runtime.startedHeld()  // counted when reserved or handed over
        } else {
            plan.groups[c.group].targets[t].runtime.started()
        }
    }

    /// The current target connection failed to open: forget it and try another.
    func connectFailed(_ c: TCPConnection) {
        if c.target >= 0, let p = c.plan { p.groups[c.group].targets[c.target].runtime.failed() }
        dropServer(c)
        connectNext(c)
    }

    private func dropServer(_ c: TCPConnection) {
        if case .tls(let s) = c.serverTransport { s.shutdown() }
        c.serverTransport = .plain
        c.serverHandshaking = false
        if let fd = c.server?.raw {
            fds.unregister(fd)
            c.server = nil  // closes
        }
        if c.target >= 0 {
            c.plan?.groups[c.group].targets[c.target].runtime.release()
            // Balancer state belongs to the current plan; a connection from an older plan
            // has nothing to give back to it.
            if c.plan === plan { pickers[c.group].closed(c.target) }
            c.target = -1
        }
        c.serverReady = Readiness()
    }

    private func established(_ c: TCPConnection) {
        if let p = c.plan { p.groups[c.group].targets[c.target].runtime.succeeded() }
        c.state = .established
        c.serverReady.writable = true
        c.lastActivity = now
        armTimer(c)
        if let p = c.plan, p.groups[c.group].tls == nil,
            let version = p.groups[c.group].proxySend ?? p.listeners[c.listener].proxySend {
            // The header goes first in `up`'s copy buffer; a first pass that may not write
            // reads the payload the client already sent in behind it, so header and early
            // payload leave in one write. Splicing (bulk flows) starts once the buffer drained.
            let b = buffers.acquire()
            c.up.buffer = b
            c.up.start = 0
            c.up.end = encodeProxyHeader(c, version, into: UnsafeMutableRawBufferPointer(start: b, count: buffers.bufferSize))
            c.proxyHeaderBytes = c.up.end
            if c.clientReady.readable {
                c.serverReady.writable = false
                service(c)
                guard c.state == .established else { return }
                c.serverReady.writable = true
            }
        }
        service(c)
    }

    /// The PROXY header for this connection: the client (the carried source when a header
    /// was accepted) and the address it connected to (the carried destination, else the
    /// listener's address, or the client socket's local address for a wildcard bind).
    private func encodeProxyHeader(_ c: TCPConnection, _ version: ProxyProtocolVersion,
                                   into out: UnsafeMutableRawBufferPointer) -> Int {
        var destination = c.carriedDestination
        if destination == nil, let l = c.plan?.listeners[c.listener] {
            destination = Worker.isWildcard(l.address) ? Socket.localAddress(c.clientFd) : l.address
        }
        return ProxyHeaderEncoder.encode(version, datagram: false, source: c.clientAddress, destination: destination,
                                         into: out)
    }

    /// `0.0.0.0` or `::`: the address a client reached is only known per socket.
    static func isWildcard(_ a: SocketAddress) -> Bool {
        if let v4 = a.ipv4Address { return v4 == 0 }
        if let v6 = a.ipv6Address { return v6.0 == 0 && v6.1 == 0 }
        return false
    }

    /// A `tls` group: the PROXY header goes on the bare socket before the TLS handshake.
    /// `false` when it could not be written whole (the target is treated as failed).
    private func sendProxyHeaderBeforeTLS(_ c: TCPConnection) -> Bool {
        guard let p = c.plan, let version = p.groups[c.group].proxySend ?? p.listeners[c.listener].proxySend else {
            return true
        }
        // maxLength bytes on the stack.
        var header: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                     UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &header) { out in
            let n = encodeProxyHeader(c, version, into: out)
            guard n > 0, let base = out.baseAddress else { return false }
            // A freshly connected socket has room for ~100 bytes: a short write means trouble.
            guard case .processed(let w)? = try? Posix.write(c.serverFd, from: base, count: n), w == n else {
                return false
            }
            return true
        }
    }

    @inline(__always)
    func clientEvent(_ c: TCPConnection, _ events: EpollEvents) {
        if events.contains(.error) {
            c.end = .error
            close(c)
            return
        }
        c.clientReady.note(events)
        switch c.state {
        case .established: service(c)
        case .handshaking: clientHandshake(c)
        case .preamble where c.preamble.readsInput && c.clientReady.readable: runPreamble(c)
        case .queued:
            // A client that hangs up while queued leaves the queue; its bytes stay in the kernel.
            if !events.isDisjoint(with: [.readHangup, .hangup]) { close(c) }
        case .preamble, .connecting, .free: break
        }
    }

    @inline(__always)
    func serverEvent(_ c: TCPConnection, _ events: EpollEvents) {
        if c.state == .connecting {
            // A failed nonblocking connect reports EPOLLERR|EPOLLHUP; no SO_ERROR read needed.
            if !events.isDisjoint(with: [.error, .hangup]) {
                connectFailed(c)
            } else if c.serverHandshaking || events.contains(.writable) {
                c.serverReady.note(events)
                if targetHandshake(c) { established(c) }
            }
            return
        }
        if events.contains(.error) {
            c.end = .error
            close(c)
            return
        }
        c.serverReady.note(events)
        service(c)
    }

    /// Unregisters and closes both sockets and returns the object and its pipes/buffers to
    /// the pools.
    func close(_ c: TCPConnection) {
        guard c.state != .free else { return }
        if c.state == .handshaking {
            c.end = .tlsHandshakeFailed  // failed, timed out, or the client left during it
            if let id = c.plan?.listeners[c.listener].statsId, now >= c.handshakeDeadline {
                countHandshakeFailure(.timeout, statsId: id)
            }
        }
        if c.state == .preamble, c.preamble.readsInput, let id = c.plan?.listeners[c.listener].statsId,
            now >= c.preambleDeadline {
            countProxyHeader(StatsBlock.proxyTimeout, statsId: id)
            c.end = .proxyHeaderTimeout
        }
        leaveQueue(c)  // a client that leaves while queued is dropped from the queue
        releaseHeld(c)
        if c.logFd >= 0 { logConnection(c, target: c.state == .established ? c.target : -1) }
        dropServer(c)
        if case .tls(let s) = c.clientTransport { s.shutdown() }
        c.clientTransport = .plain
        if let fd = c.client?.raw {
            fds.unregister(fd)
            c.client = nil  // closes
        }
        if let p = c.plan, p.listeners[c.listener].statsId >= 0 {
            let id = p.listeners[c.listener].statsId
            // The PROXY header sent to the target is not the client's payload.
            let header = UInt64(truncatingIfNeeded: c.proxyHeaderBytes)
            stats.add(StatsBlock.listenerSlot(id, StatsBlock.bytesIn), c.up.bytes > header ? c.up.bytes &- header : 0)
            stats.add(StatsBlock.listenerSlot(id, StatsBlock.bytesOut), c.down.bytes)
            stats.add(StatsBlock.listenerSlot(id, StatsBlock.connClosed))
        }
        release(&c.up)
        release(&c.down)
        c.state = .free
        c.plan = nil
        c.generation &+= 1
        freeSlots.append(c.slot)
        activeLocal -= 1
        _ = process.activeConnections.subtract(1, ordering: .relaxed)
    }

    private func release(_ flow: inout Flow) {
        if let p = flow.pipe.take() {
            // A pipe with bytes still in it cannot be reused: dropping it closes both ends.
            if flow.inPipe == 0 { pipes.release(p) } else { _ = consume p }
        }
        if let b = flow.buffer {
            buffers.release(b)
            flow.buffer = nil
        }
    }
}
