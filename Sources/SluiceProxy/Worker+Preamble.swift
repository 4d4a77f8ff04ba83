import SluiceCore

/// What reading a connection's preamble came to.
enum PreambleOutcome {
    /// Not complete yet: wait for the client's next readable edge (or the deadline).
    case wait
    /// Complete and consumed from the socket; the payload is still in it. `carried` replaces
    /// the peer when set.
    case done(carried: ProxyHeaderParser.Carried?)
    /// Missing, malformed, oversized or cut short: close the connection (count it invalid).
    case invalid
}

/// The preamble phase's I/O, shared by the L4 and L7 paths: the header is peeked
/// (`recv(MSG_PEEK)`) into a pool buffer and parsed; once complete exactly its bytes are read
/// out, so the payload stays in the socket (splice and the TLS handshake read it from there).
extension Worker {
    /// How long a client has to send its PROXY header: min(10 s, `limit`), where `limit` is
    /// the listener's idle timeout (tcp, tls) or header timeout (http, https).
    static let preambleMaxNanos: UInt64 = 10_000_000_000

    static func preambleTimeout(limit: UInt64) -> UInt64 {
        limit == 0 ? preambleMaxNanos : min(preambleMaxNanos, limit)
    }

    /// Feeds `preamble` what the client sent so far. Edge-triggered: a header that is not
    /// complete clears `io.readable` (the bytes stay in the socket, new ones bring a new edge).
    func readPreamble(_ preamble: Preamble, fd: Int32, io: inout Readiness) -> PreambleOutcome {
        guard io.readable else { return .wait }
        let scratch = buffers.acquire()
        defer { buffers.release(scratch) }
        let size = min(preamble.maxLength, buffers.bufferSize)
        let got: Int
        do {
            switch try Posix.peek(fd, into: scratch, count: size) {
            case .wouldBlock:
                io.readable = false
                return .wait
            case .processed(let n):
                got = n
            }
        } catch {
            return .invalid  // reset by the client
        }
        // End of input before the header ended: a truncated header.
        guard got > 0 else { return .invalid }
        switch preamble.step(input: UnsafeRawBufferPointer(start: scratch, count: got)) {
        case .needMore:
            // A FIN already came: nothing more will complete it. Otherwise wait for bytes
            // (the parser decides within `maxLength`, so a full peek never needs more).
            if io.hangup || got >= size { return .invalid }
            io.readable = false
            return .wait
        case .reject:
            return .invalid
        case .done(let consumed, let carried):
            // The bytes were peeked, so a read of exactly `consumed` returns them all.
            guard consumed > 0, consumed <= got else { return .done(carried: carried) }
            do {
                switch try Posix.read(fd, into: scratch, count: consumed) {
                case .processed(let n) where n == consumed: return .done(carried: carried)
                default: return .invalid
                }
            } catch {
                return .invalid
            }
        }
    }

    /// Counts one PROXY header outcome for a listener (`StatsBlock.proxyAccepted`,
    /// `proxyInvalid`, `proxyTimeout`).
    func countProxyHeader(_ slot: Int, statsId: Int) {
        if statsId >= 0 { stats.add(StatsBlock.listenerSlot(statsId, slot)) }
    }
}
