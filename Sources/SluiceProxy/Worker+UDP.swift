import SluiceBalancer
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// The UDP data path (udp and tcp_udp listeners): datagrams from clients are read in batches
/// (`recvmmsg`) from the worker's listener socket, each client address is a flow pinned to a
/// target by the group's picker (Maglev for `flow_hash`) with its own socket connected to the
/// target, and the datagrams of one flow leave together (`sendmmsg`). Replies are read from
/// the flow sockets and leave through the listener socket, batched per loop turn, from the
/// address the client wrote to. UDP never queues: a datagram that cannot be sent now (full
/// socket buffer, port unreachable, flow table full, no target) is dropped and counted.
extension Worker {
    /// Entries per `recvmmsg`/`sendmmsg` batch.
    static let udpBatchSize = 32
    /// Batches read from one listener socket per event before other events get a turn.
    static let udpReadBatches = 8

    // MARK: Listener sockets

    /// Registers a UDP listener socket for reading (edge-triggered) as listener `index`, and
    /// maps the worker's datagram batches the first time.
    func registerUDPListener(_ l: UDPListenerSocket, index: Int) throws(Errno) {
        if udpIn == nil || udpOut == nil {
            guard let a = udpIn ?? DatagramBatch(capacity: Worker.udpBatchSize),
                  let b = udpOut ?? DatagramBatch(capacity: Worker.udpBatchSize) else { throw Errno(ENOMEM) }
            udpIn = a
            udpOut = b
        }
        let token = fds.register(l.fd, owner: .udpListener, index: Int32(index))
        try epoll.add(l.fd, events: [.readable, .edgeTriggered], data: token)
        l.pending = true  // datagrams may have queued before registration
        udpReadPending = true
    }

    /// Unregisters a UDP listener socket the worker then drops (which closes it); its flows
    /// close first (they can no longer answer).
    func unregisterUDPListener(_ l: UDPListenerSocket) {
        if udpOutCount > 0 && udpOutFd == l.fd { flushReplies() }
        for f in udpFlows where f.state == .open && f.listenerFd == l.fd { closeFlow(f) }
        epoll.remove(l.fd)
        fds.unregister(l.fd)
    }

    /// Reads listener sockets whose last read stopped at its budget.
    func readPendingUDP() {
        udpReadPending = false
        for i in udpListeners.indices where udpListeners[i]?.pending == true { udpListenerReadable(i) }
    }

    /// Reads datagrams from listener `index` in batches and sends each batch on to the flows'
    /// targets, until the socket is empty or the budget is spent (then it stays pending).
    func udpListenerReadable(_ index: Int) {
        guard index < udpListeners.count, let l = udpListeners[index], let batch = udpIn else { return }
        for _ in 0..<Worker.udpReadBatches {
            batch.prepareReceive(0..<batch.capacity, addresses: true)
            let n: Int
            do {
                switch try batch.receive(l.fd, 0..<batch.capacity) {
                case .wouldBlock:
                    l.pending = false
                    return
                case .processed(let k): n = k
                }
            } catch {
                // Nothing a client can cause on an unconnected socket (ENOMEM and the like):
                // the next datagram wakes the socket again.
                l.pending = false
                return
            }
            forward(batch, count: n, from: l, listener: index)
            if n < batch.capacity {
                l.pending = false
                return
            }
        }
        l.pending = true
        udpReadPending = true
    }

    // MARK: Client → target

    /// Sends the `n` datagrams just received on `l` to their flows' targets, opening flows for
    /// new clients. Consecutive datagrams of one flow leave in one `sendmmsg`.
    private func forward(_ batch: DatagramBatch, count n: Int, from l: UDPListenerSocket, listener index: Int) {
        let lp = plan.listeners[index]
        var full: UInt64 = 0
        var dropped: UInt64 = 0
        var bytes: UInt64 = 0
        // First the flow of every datagram (a flow opened or re-pinned here serves the rest).
        for i in 0..<n {
            udpSlots[i] = -1
            udpLengths[i] = batch.length(i)
            if batch.isTruncated(i) {
                dropped &+= 1
                continue
            }
            let client = batch.source(i)
            let local = l.wildcard ? (batch.destination(i)?.withPort(lp.port) ?? l.address) : l.address
            guard let key = UDPFlowKey(client: client, local: local, socket: l.fd) else {
                dropped &+= 1
                continue
            }
            let f: UDPFlow
            if let s = flowTable.find(key) {
                f = udpFlows[Int(s)]
                if !targetUsable(f), !pin(f) {
                    dropFlow(f, before: i, dropped: &dropped)
                    dropped &+= 1
                    continue
                }
            } else {
                guard l.flows < l.maxFlows else {
                    full &+= 1
                    continue
                }
                guard let opened = openFlow(key: key, client: client, local: local, on: l, listener: index) else {
                    dropped &+= 1
                    continue
                }
                f = opened
            }
            f.lastActivity = now
            armUDPTimer(f)
            udpSlots[i] = f.slot
        }
        // Then one send per run of datagrams of the same flow.
        var i = 0
        while i < n {
            let s = udpSlots[i]
            guard s >= 0 else {
                i += 1
                continue
            }
            var end = i + 1
            while end < n && udpSlots[end] == s { end += 1 }
            sendRun(udpFlows[Int(s)], batch, i..<end, bytes: &bytes, dropped: &dropped)
            i = end
        }
        let id = lp.statsId
        guard id >= 0, id < StatsBlock.maxListeners else { return }
        stats.add(StatsBlock.listenerSlot(id, StatsBlock.udpDatagramsIn), UInt64(n))
        if bytes > 0 { stats.add(StatsBlock.listenerSlot(id, StatsBlock.bytesIn), bytes) }
        if full > 0 { stats.add(StatsBlock.listenerSlot(id, StatsBlock.udpFlowsFull), full) }
        if dropped > 0 { stats.add(StatsBlock.listenerSlot(id, StatsBlock.udpDropped), dropped) }
    }

    /// Sends entries `run` of `batch` (datagrams of flow `f`) on the flow's socket, the first
    /// with the flow's PROXY header when one is due. A datagram the kernel refuses is dropped
    /// (port unreachable reported by the target's host, too large with its header); one that
    /// would block drops the rest of the run (the socket buffer is full).
    private func sendRun(_ f: UDPFlow, _ batch: DatagramBatch, _ run: Range<Int>, bytes: inout UInt64,
                         dropped: inout UInt64) {
        let fd = f.socketFd
        guard fd >= 0 else {
            dropped &+= UInt64(run.count)
            return
        }
        var headerAt = -1
        var headerLength = 0
        if f.headerPending {
            headerAt = run.lowerBound
            headerLength = proxyHeader(f, into: batch.prefix(headerAt))
        }
        for i in run {
            batch.prepareSend(i, length: udpLengths[i], prefixLength: i == headerAt ? headerLength : 0, to: nil, from: nil)
        }
        var k = run.lowerBound
        while k < run.upperBound {
            do {
                switch try batch.send(fd, k..<run.upperBound) {
                case .processed(let sent):
                    guard sent > 0 else {
                        dropped &+= UInt64(run.upperBound - k)
                        k = run.upperBound
                        continue
                    }
                    let before = bytes
                    for j in k..<(k + sent) { bytes &+= UInt64(udpLengths[j]) }
                    f.bytesIn &+= bytes &- before
                    if headerAt >= k && headerAt < k + sent { f.headerPending = false }
                    k += sent
                case .wouldBlock:
                    dropped &+= UInt64(run.upperBound - k)
                    k = run.upperBound
                }
            } catch {
                if error.code == ECONNREFUSED, f.target >= 0 { plan.groups[f.group].targets[f.target].runtime.failed() }
                dropped &+= 1
                if k == headerAt {
                    // The header did not reach the target: the next datagram carries it.
                    headerAt = k + 1
                    if headerAt < run.upperBound {
                        headerLength = proxyHeader(f, into: batch.prefix(headerAt))
                        batch.prepareSend(headerAt, length: udpLengths[headerAt], prefixLength: headerLength,
                                          to: nil, from: nil)
                    }
                }
                k += 1
            }
        }
    }

    /// The PROXY v2 header (DGRAM: UDP4/UDP6, the client and the address it wrote to) flow
    /// `f` sends before its first datagram, written into `space`; returns its length (0: none).
    /// v1 has no datagram form (the config refuses it for UDP), so only v2 writes one.
    private func proxyHeader(_ f: UDPFlow, into space: UnsafeMutableRawBufferPointer) -> Int {
        guard proxyVersion(of: f) == .v2 else { return 0 }
        return ProxyHeaderEncoder.encode(.v2, datagram: true, source: f.client, destination: f.local, into: space)
    }

    // MARK: Target → client

    /// Reads the replies waiting on flow `slot`'s socket into the reply batch; they leave
    /// through the listener socket when the batch is full, the next reply is for another
    /// listener socket, or the loop turn ends (`flushReplies`).
    func udpFlowReadable(slot: Int32) {
        let f = udpFlows[Int(slot)]
        guard f.state == .open, let batch = udpOut, f.socketFd >= 0, f.listener < udpListeners.count,
              let l = udpListeners[f.listener], l.fd == f.listenerFd else { return }
        if udpOutCount > 0 && udpOutFd != l.fd { flushReplies() }
        udpOutFd = l.fd
        udpOutStatsId = plan.listeners[f.listener].statsId
        let source: SocketAddress? = l.wildcard ? f.local : nil
        var errors = 0
        while true {
            if udpOutCount == batch.capacity {
                flushReplies()
                udpOutFd = l.fd
                udpOutStatsId = plan.listeners[f.listener].statsId
            }
            let range = udpOutCount..<batch.capacity
            batch.prepareReceive(range, addresses: false)
            do {
                switch try batch.receive(f.socketFd, range) {
                case .wouldBlock:
                    return
                case .processed(let n):
                    for i in udpOutCount..<(udpOutCount + n) {
                        let length = batch.length(i)  // (prepareSend clears it)
                        batch.prepareSend(i, length: length, prefixLength: 0, to: f.client, from: source)
                        f.bytesOut &+= UInt64(truncatingIfNeeded: length)
                    }
                    udpOutCount += n
                    if n > 0 {
                        f.lastActivity = now
                        armUDPTimer(f)
                        if f.target >= 0 { plan.groups[f.group].targets[f.target].runtime.succeeded() }
                    }
                    if n < range.count { return }
                }
            } catch {
                // A datagram sent earlier met "port unreachable": the error is reported once,
                // here or on the next send. Anything else: stop reading for this event.
                countUDPDropped(statsId: plan.listeners[f.listener].statsId)
                if error.code == ECONNREFUSED, f.target >= 0 {
                    plan.groups[f.group].targets[f.target].runtime.failed()
                }
                errors += 1
                if error.code != ECONNREFUSED || errors > 1 { return }
            }
        }
    }

    /// Sends the replies gathered this turn through their listener socket.
    func flushReplies() {
        guard let batch = udpOut, udpOutCount > 0 else { return }
        let count = udpOutCount
        udpOutCount = 0
        var sent: UInt64 = 0
        var bytes: UInt64 = 0
        var dropped: UInt64 = 0
        var k = 0
        while k < count {
            do {
                switch try batch.send(udpOutFd, k..<count) {
                case .processed(let n):
                    guard n > 0 else {
                        dropped &+= UInt64(count - k)
                        k = count
                        continue
                    }
                    for j in k..<(k + n) { bytes &+= UInt64(batch.length(j)) }
                    sent &+= UInt64(n)
                    k += n
                case .wouldBlock:
                    dropped &+= UInt64(count - k)
                    k = count
                }
            } catch {
                dropped &+= 1  // this client cannot be reached; the others still can
                k += 1
            }
        }
        let id = udpOutStatsId
        guard id >= 0, id < StatsBlock.maxListeners else { return }
        stats.add(StatsBlock.listenerSlot(id, StatsBlock.udpDatagramsOut), sent)
        stats.add(StatsBlock.listenerSlot(id, StatsBlock.bytesOut), bytes)
        if dropped > 0 { stats.add(StatsBlock.listenerSlot(id, StatsBlock.udpDropped), dropped) }
    }

    private func countUDPDropped(statsId id: Int) {
        guard id >= 0, id < StatsBlock.maxListeners else { return }
        stats.add(StatsBlock.listenerSlot(id, StatsBlock.udpDropped))
    }
}
