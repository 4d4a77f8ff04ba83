import SluiceBalancer
import SluiceConfig
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// The L4 TCP byte pump: both directions of an established connection, by splice (kernel
/// pipes) when both transports allow it, else by copy through a pooled buffer and the
/// transports (TLS). Readiness is remembered per side and cleared only when the kernel or the
/// transport says a socket is empty or full; a FIN is passed on once its direction drained.
extension Worker {
    /// Moves what can move both ways; closes the connection on a socket error or once both
    /// directions have passed on their FIN.
    @inline(__always)
    func service(_ c: TCPConnection) {
        var progressed = false
        let client = c.clientFd
        let server = c.serverFd
        let splice = useSplice && c.clientTransport.canSplice && c.serverTransport.canSplice
        let ok = pump(&c.up, from: client, c.clientTransport, to: server, c.serverTransport, splice: splice,
                      source: &c.clientReady, destination: &c.serverReady, otherFinished: c.down.finished,
                      progressed: &progressed)
            && pump(&c.down, from: server, c.serverTransport, to: client, c.clientTransport, splice: splice,
                    source: &c.serverReady, destination: &c.clientReady, otherFinished: c.up.finished,
                    progressed: &progressed)
        if !ok || (c.up.finished && c.down.finished) {
            if !ok { c.end = .error }
            close(c)
            return
        }
        if progressed { c.lastActivity = now }
    }

    /// One direction. `splice`: both transports allow it (and splicing is on). Returns false
    /// on a socket error.
    @inline(__always)
    private func pump(_ flow: inout Flow, from source: Int32, _ sourceTransport: Transport, to destination: Int32,
                      _ destinationTransport: Transport, splice: Bool, source sourceReady: inout Readiness,
                      destination destinationReady: inout Readiness, otherFinished: Bool,
                      progressed: inout Bool) -> Bool {
        do {
            if splice && flow.bulk && flow.buffer == nil {
                try splicePump(&flow, source, destination, &sourceReady, &destinationReady, &progressed)
            } else {
                try copyPump(&flow, source, sourceTransport, destination, destinationTransport, &sourceReady,
                             &destinationReady, &progressed)
            }
        } catch {
            return false
        }
        if flow.sourceClosed && flow.pending == 0 && !flow.shutdownSent {
            // When the other direction has already finished the connection closes right
            // away, and close() sends this FIN itself.
            if !otherFinished { destinationTransport.shutdownWrite(destination) }
            flow.shutdownSent = true
        }
        return true
    }

    /// Zero-copy: socket → pipe → socket. The pipe is held only while it has bytes in it.
    /// Only for transports that allow it (`Transport.canSplice`): the kernel moves the bytes
    /// the transport would have read or written.
    @inline(__always)
    private func splicePump(_ flow: inout Flow, _ source: Int32, _ destination: Int32, _ sourceReady: inout Readiness,
                            _ destinationReady: inout Readiness, _ progressed: inout Bool) throws(Errno) {
        while true {
            var moved = false
            if flow.inPipe > 0 && destinationReady.writable, let readEnd = flow.pipe?.readEnd.raw {
                switch try Posix.splice(from: readEnd, to: destination, count: flow.inPipe) {
                case .processed(let n):
                    flow.inPipe -= n
                    flow.bytes &+= UInt64(n)
                    moved = true
                case .wouldBlock:
                    destinationReady.writable = false
                }
            }
            if !flow.sourceClosed && sourceReady.readable {
                if flow.pipe == nil {
                    guard let p = pipes.acquire() else {
                        // Out of descriptors for pipes: this flow copies through a buffer instead.
                        flow.buffer = buffers.acquire()
                        try copyPump(&flow, source, .plain, destination, .plain, &sourceReady, &destinationReady,
                                     &progressed)
                        return
                    }
                    flow.pipe = consume p
                }
                let (writeEnd, capacity) = (flow.pipe!.writeEnd.raw, flow.pipe!.capacity)
                let room = capacity - flow.inPipe
                if room > 0 {
                    switch try Posix.splice(from: source, to: writeEnd, count: room) {
                    case .processed(0):
                        flow.sourceClosed = true
                        moved = true
                    case .processed(let n):
                        flow.inPipe += n
                        moved = true
                    case .wouldBlock:
                        // EAGAIN means "socket empty" only if the pipe is empty; otherwise the
                        // pipe may be out of slots, so keep the readiness until it drains.
                        if flow.inPipe == 0 { sourceReady.readable = false }
                    }
                }
            }
            if !moved { break }
            progressed = true
        }
        if flow.inPipe == 0, let p = flow.pipe.take() {
            pipes.release(p)
        }
    }

    /// Copying: source transport → pool buffer → destination transport. The path for any
    /// transport that cannot splice, and the fallback when no pipe can be had.
    private func copyPump(_ flow: inout Flow, _ source: Int32, _ sourceTransport: Transport, _ destination: Int32,
                          _ destinationTransport: Transport, _ sourceReady: inout Readiness,
                          _ destinationReady: inout Readiness, _ progressed: inout Bool) throws(Errno) {
        let size = buffers.bufferSize
        while true {
            var moved = false
            if flow.end > flow.start && destinationReady.writable, let b = flow.buffer {
                // Once the source has ended, the FIN follows these bytes (shutdown or close as
                // soon as they are out): one segment carries both.
                switch destinationTransport.write(destination, from: b + flow.start, count: flow.end - flow.start,
                                                  finFollows: flow.sourceClosed) {
                case .bytes(let n):
                    // All written, or a partial TLS write (one record) with room left: the loop
                    // writes on.
                    flow.start += n
                    flow.bytes &+= UInt64(n)
                    if flow.start == flow.end {
                        flow.start = 0
                        flow.end = 0
                    }
                    moved = n > 0
                case .drained(let n):
                    flow.start += n
                    flow.bytes &+= UInt64(n)
                    if flow.start == flow.end {
                        flow.start = 0
                        flow.end = 0
                    } else {
                        // A short write filled the socket's buffer: the next EPOLLOUT edge says
                        // when there is room again.
                        destinationReady.writable = false
                    }
                    moved = n > 0
                case .wantsRead:
                    // TLS: the write resumes on the destination's next readable event.
                    destinationReady.writable = false
                    destinationReady.writeWaitsForReadable = true
                case .wouldBlock, .wantsWrite, .closed:
                    destinationReady.writable = false
                case .failed(let e):
                    throw e
                }
            }
            if !flow.sourceClosed && sourceReady.readable && flow.end < size {
                if flow.buffer == nil { flow.buffer = buffers.acquire() }
                // A plain socket whose peer's FIN has arrived (epoll said so) and that answers a
                // short read holds nothing but that FIN now: TCP queues data in order, and the
                // FIN only after every byte before it. So end the source without a read of 0.
                let finAfterShortRead = sourceReady.hangup && sourceTransport.canSplice
                switch sourceTransport.read(source, into: flow.buffer! + flow.end, count: size - flow.end,
                                            hangupSeen: sourceReady.hangup && !finAfterShortRead) {
                case .bytes(let n):
                    flow.end += n
                    moved = true
                    // The buffer filled up: bulk data. Splice once this buffer is sent.
                    if flow.end == size { flow.bulk = true }
                case .drained(let n):
                    // The short-read rule (plain transport): the socket is empty, the next
                    // byte brings a new edge.
                    flow.end += n
                    sourceReady.readable = false
                    moved = n > 0
                    if finAfterShortRead {
                        flow.sourceClosed = true
                        moved = true
                    }
                case .closed:
                    flow.sourceClosed = true
                    moved = true
                case .wouldBlock, .wantsRead:
                    sourceReady.readable = false
                case .wantsWrite:
                    // TLS: the read resumes on the source's next writable event.
                    sourceReady.readable = false
                    sourceReady.readWaitsForWritable = true
                case .failed(let e):
                    throw e
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
}
