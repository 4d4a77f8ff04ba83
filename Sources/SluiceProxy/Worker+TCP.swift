import SluiceBalancer
import SluiceConfig
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// The L4 TCP data path: open a target connection, move bytes both ways, pass half-closes
/// on, close. Sockets are registered edge-triggered for reading and writing once; readiness
/// is remembered in the connection and cleared only when the kernel says `EAGAIN`.
extension Worker {
    static let pollEvents: EpollEvents = [.readable, .writable, .readHangup, .edgeTriggered]

    func open(client fd: Int32, listener: Int) {
        _ = process.activeConnections.add(1, ordering: .relaxed)
        activeLocal += 1
        let c = takeConnection()
        c.reset(client: fd, plan: plan, listener: listener, now: now)
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
        armTimer(c)
        connectNext(c)
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
        if let old = c.plan, old !== self.plan {
            // A new Plan arrived between tries (health change, reload): continue on it.
            guard let r = self.plan.rebase(group: c.group, tried: c.tried, from: old) else {
                close(c)
                return
            }
            (c.group, c.tried) = r
            c.plan = self.plan
            c.listener = self.plan.listeners.firstIndex { $0.name == old.listeners[c.listener].name } ?? 0
        }
        guard let plan = c.plan else { return }
        let group = plan.groups[c.group]
        while c.tried.count < Worker.maxConnectAttempts {
            let pick = groupWeights[c.group].rotation.map { $0.next(excluding: c.tried) }
                ?? pickers[c.group].pick(hash: c.flowHash, excluding: c.tried)
            guard let t = pick else { break }
            c.tried.insert(t)
            let address = group.targets[t].address
            guard let fd = try? Socket.tcp(for: address) else { break }
            Socket.setNoDelay(fd)
            let token = fds.register(fd, owner: .targetSide, index: c.slot)
            do {
                try epoll.add(fd, events: Worker.pollEvents, data: token)
            } catch {
                fds.unregister(fd)
                Posix.close(fd)
                break
            }
            c.server = fd
            c.target = t
            pickers[c.group].opened(t)
            group.targets[t].runtime.started()
            do {
                switch try Socket.connect(fd, to: address) {
                case .connected:
                    established(c)
                case .inProgress:
                    c.state = .connecting
                    c.connectDeadline = now &+ plan.listeners[c.listener].connectTimeout
                    armTimer(c)
                }
                return
            } catch {
                dropServer(c)
            }
        }
        close(c)
    }

    /// The current target connection failed to open: forget it and try another.
    func connectFailed(_ c: TCPConnection) {
        if c.target >= 0, let p = c.plan { p.groups[c.group].targets[c.target].runtime.failed() }
        dropServer(c)
        connectNext(c)
    }

    private func dropServer(_ c: TCPConnection) {
        if c.server >= 0 {
            fds.unregister(c.server)
            Posix.close(c.server)
            c.server = -1
        }
        if c.target >= 0 {
            c.plan?.groups[c.group].targets[c.target].runtime.finished()
            // Balancer state belongs to the current plan; a connection from an older plan
            // has nothing to give back to it.
            if c.plan === plan { pickers[c.group].closed(c.target) }
            c.target = -1
        }
        c.serverReadable = false
        c.serverWritable = false
    }

    private func established(_ c: TCPConnection) {
        if let p = c.plan { p.groups[c.group].targets[c.target].runtime.succeeded() }
        c.state = .established
        c.serverWritable = true
        c.lastActivity = now
        armTimer(c)
        service(c)
    }

    @inline(__always)
    func clientEvent(_ c: TCPConnection, _ events: EpollEvents) {
        if events.contains(.error) {
            close(c)
            return
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) { c.clientReadable = true }
        if !events.isDisjoint(with: [.writable, .hangup]) { c.clientWritable = true }
        if c.state == .established { service(c) }
    }

    @inline(__always)
    func serverEvent(_ c: TCPConnection, _ events: EpollEvents) {
        if c.state == .connecting {
            // A failed nonblocking connect reports EPOLLERR|EPOLLHUP; no SO_ERROR read needed.
            if !events.isDisjoint(with: [.error, .hangup]) {
                connectFailed(c)
            } else if events.contains(.writable) {
                if events.contains(.readable) { c.serverReadable = true }
                established(c)
            }
            return
        }
        if events.contains(.error) {
            close(c)
            return
        }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) { c.serverReadable = true }
        if !events.isDisjoint(with: [.writable, .hangup]) { c.serverWritable = true }
        service(c)
    }

    /// Moves what can move both ways; closes the connection on a socket error or once both
    /// directions have passed on their FIN.
    @inline(__always)
    private func service(_ c: TCPConnection) {
        var progressed = false
        let ok = pump(&c.up, from: c.client, to: c.server, sourceReadable: &c.clientReadable,
                      destinationWritable: &c.serverWritable, otherFinished: c.down.finished, progressed: &progressed)
            && pump(&c.down, from: c.server, to: c.client, sourceReadable: &c.serverReadable,
                    destinationWritable: &c.clientWritable, otherFinished: c.up.finished, progressed: &progressed)
        if !ok || (c.up.finished && c.down.finished) {
            close(c)
            return
        }
        if progressed { c.lastActivity = now }
    }

    /// One direction. Returns false on a socket error.
    @inline(__always)
    private func pump(_ flow: inout Flow, from source: Int32, to destination: Int32, sourceReadable: inout Bool,
                      destinationWritable: inout Bool, otherFinished: Bool, progressed: inout Bool) -> Bool {
        do {
            if useSplice && flow.buffer == nil {
                try splicePump(&flow, source, destination, &sourceReadable, &destinationWritable, &progressed)
            } else {
                try copyPump(&flow, source, destination, &sourceReadable, &destinationWritable, &progressed)
            }
        } catch {
            return false
        }
        if flow.sourceClosed && flow.pending == 0 && !flow.shutdownSent {
            // When the other direction has already finished the connection closes right
            // away, and close() sends this FIN itself.
            if !otherFinished { Posix.shutdown(destination, how: Posix.shutdownWrite) }
            flow.shutdownSent = true
        }
        return true
    }

    /// Zero-copy: socket → pipe → socket. The pipe is held only while it has bytes in it.
    @inline(__always)
    private func splicePump(_ flow: inout Flow, _ source: Int32, _ destination: Int32, _ sourceReadable: inout Bool,
                            _ destinationWritable: inout Bool, _ progressed: inout Bool) throws(Errno) {
        while true {
            var moved = false
            if flow.inPipe > 0 && destinationWritable {
                switch try Posix.splice(from: flow.pipe.readEnd, to: destination, count: flow.inPipe) {
                case .processed(let n):
                    flow.inPipe -= n
                    flow.bytes &+= UInt64(n)
                    moved = true
                case .wouldBlock:
                    destinationWritable = false
                }
            }
            if !flow.sourceClosed && sourceReadable {
                if !flow.pipe.isOpen {
                    guard let p = pipes.acquire() else {
                        // Out of descriptors for pipes: this flow copies through a buffer instead.
                        flow.buffer = buffers.acquire()
                        try copyPump(&flow, source, destination, &sourceReadable, &destinationWritable, &progressed)
                        return
                    }
                    flow.pipe = p
                }
                let room = flow.pipe.capacity - flow.inPipe
                if room > 0 {
                    switch try Posix.splice(from: source, to: flow.pipe.writeEnd, count: room) {
                    case .processed(0):
                        flow.sourceClosed = true
                        moved = true
                    case .processed(let n):
                        flow.inPipe += n
                        moved = true
                    case .wouldBlock:
                        // EAGAIN means "socket empty" only if the pipe is empty; otherwise the
                        // pipe may be out of slots, so keep the readiness until it drains.
                        if flow.inPipe == 0 { sourceReadable = false }
                    }
                }
            }
            if !moved { break }
            progressed = true
        }
        if flow.inPipe == 0 && flow.pipe.isOpen {
            pipes.release(flow.pipe)
            flow.pipe = .none
        }
    }

    /// Copying fallback: socket → pool buffer → socket.
    private func copyPump(_ flow: inout Flow, _ source: Int32, _ destination: Int32, _ sourceReadable: inout Bool,
                          _ destinationWritable: inout Bool, _ progressed: inout Bool) throws(Errno) {
        while true {
            var moved = false
            if flow.end > flow.start && destinationWritable, let b = flow.buffer {
                switch try Posix.write(destination, from: b + flow.start, count: flow.end - flow.start) {
                case .processed(let n):
                    flow.start += n
                    flow.bytes &+= UInt64(n)
                    if flow.start == flow.end {
                        flow.start = 0
                        flow.end = 0
                    }
                    moved = true
                case .wouldBlock:
                    destinationWritable = false
                }
            }
            if !flow.sourceClosed && sourceReadable && flow.end < buffers.bufferSize {
                if flow.buffer == nil { flow.buffer = buffers.acquire() }
                switch try Posix.read(source, into: flow.buffer! + flow.end, count: buffers.bufferSize - flow.end) {
                case .processed(0):
                    flow.sourceClosed = true
                    moved = true
                case .processed(let n):
                    flow.end += n
                    moved = true
                case .wouldBlock:
                    sourceReadable = false
                }
            }
            if !moved { break }
            progressed = true
        }
        if flow.end == 0, let b = flow.buffer {
            buffers.release(b)
            flow.buffer = nil
        }
    }

    /// Closes both sockets and returns the object and its pipes/buffers to the pools.
    func close(_ c: TCPConnection) {
        guard c.state != .free else { return }
        dropServer(c)
        if c.client >= 0 {
            fds.unregister(c.client)
            Posix.close(c.client)
            c.client = -1
        }
        if let p = c.plan, p.listeners[c.listener].statsId >= 0 {
            let id = p.listeners[c.listener].statsId
            stats.add(StatsBlock.listenerSlot(id, StatsBlock.bytesIn), c.up.bytes)
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
        if flow.pipe.isOpen {
            // A pipe with bytes still in it cannot be reused.
            if flow.inPipe == 0 { pipes.release(flow.pipe) } else { pipes.close(flow.pipe) }
            flow.pipe = .none
        }
        if let b = flow.buffer {
            buffers.release(b)
            flow.buffer = nil
        }
    }
}
