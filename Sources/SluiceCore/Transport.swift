/// What a transport read or write did.
///
/// The cases a plain socket never produces are the TLS ones: OpenSSL may need to *write*
/// (a handshake message, a key update) before it can deliver a read, and *read* before it
/// can finish a write. The caller then waits for the other direction's readiness.
public enum TransportResult: Equatable, Sendable {
    /// Moved `n` > 0 bytes; the transport may have more.
    case bytes(Int)
    /// Moved `n` ≥ 0 bytes and knows the source is empty now: do not call again until the
    /// next readiness event (the plain transport's short-read rule).
    case drained(Int)
    /// Nothing can move until the next readiness event of the same direction.
    case wouldBlock
    /// The peer closed its sending side (end of input).
    case closed
    /// Nothing moved until the descriptor is writable (TLS).
    case wantsWrite
    /// Nothing moved until the descriptor is readable (TLS).
    case wantsRead
    /// A socket error: the connection is over.
    case failed(Errno)
}

/// How a connection's bytes move: one type for every data-path byte. Plain TCP or TLS (a
/// `TLSStream` whose handshake the caller has finished); a preamble phase (PROXY protocol) is
/// another case of the same seam later.
///
/// The "a short read drained the socket" rule lives here, in the plain transport only: with
/// edge-triggered epoll a read that returns less than asked means the socket is empty and a
/// new event will come. Under TLS a short read proves nothing (OpenSSL buffers whole records):
/// the TLS transport answers `.drained` only when its socket BIO saw the kernel queue empty
/// (TCP_INQ) and OpenSSL holds no whole record; otherwise `.bytes`, and the caller reads on
/// until `.wouldBlock`. A short TLS write (partial writes are on, one record) is `.bytes`:
/// write on while writable. A stream pipe answers `.drained` when it is empty or full.
///
/// A TLS read may answer `.wantsWrite` and a TLS write `.wantsRead` (see `Readiness`). The
/// `fd` argument is the plain transport's; the TLS stream already holds its socket.
public enum Transport {
    case plain
    /// TLS over the socket; the stream owns the `SSL`, not the descriptor.
    case tls(TLSStream)
    /// An HTTP/2 stream seen as an HTTP/1.1 byte stream (`StreamPipe`); no socket (`fd` is
    /// ignored).
    case stream(StreamPipe)

    /// Whether bytes may move with `splice(2)`: plain sockets only (TLS bytes pass through
    /// OpenSSL in user space; kTLS later).
    @inline(__always)
    public var canSplice: Bool {
        switch self {
        case .plain: true
        case .tls, .stream: false
        }
    }

    /// Ends the sending side: a TCP half-close, TLS close_notify, or the pipe's end.
    public func shutdownWrite(_ fd: Int32) {
        switch self {
        case .plain: Posix.shutdown(fd, how: Posix.shutdownWrite)
        case .tls(let stream):
            // close_notify, then the TCP half-close; reading from the peer goes on.
            stream.shutdown()
            Posix.shutdown(fd, how: Posix.shutdownWrite)
        case .stream(let pipe): pipe.shutdownWrite()
        }
    }

    /// Reads up to `count` bytes into `buffer`. `hangupSeen`: epoll already reported a
    /// hang-up, so a short read does not prove the socket drained (read on to the EOF).
    @inline(__always)
    public func read(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int,
                     hangupSeen: Bool = false) -> TransportResult {
        switch self {
        case .plain:
            do {
                switch try Posix.read(fd, into: buffer, count: count) {
                case .wouldBlock: return .wouldBlock
                case .processed(0): return .closed
                case .processed(let n): return n < count && !hangupSeen ? .drained(n) : .bytes(n)
                }
            } catch {
                return .failed(error)
            }
        case .tls(let stream):
            return stream.read(into: buffer, count: count)
        case .stream(let pipe):
            return pipe.read(into: buffer, count: count)
        }
    }

    /// Writes up to `count` bytes from `buffer`. `finFollows`: the sender half-closes (or
    /// closes) right after these bytes, so a plain socket holds them back (`MSG_MORE`) to send
    /// them with its FIN in one segment.
    @inline(__always)
    public func write(_ fd: Int32, from buffer: UnsafeRawPointer, count: Int, finFollows: Bool = false)
        -> TransportResult
    {
        switch self {
        case .plain:
            do {
                let r =
                    finFollows
                    ? try Posix.send(fd, from: buffer, count: count, flags: Posix.sendMore)
                    : try Posix.write(fd, from: buffer, count: count)
                switch r {
                case .wouldBlock: return .wouldBlock
                case .processed(let n): return n < count ? .drained(n) : .bytes(n)
                }
            } catch {
                return .failed(error)
            }
        case .tls(let stream):
            return stream.write(from: buffer, count: count)
        case .stream(let pipe):
            return pipe.write(from: buffer, count: count)
        }
    }
}
