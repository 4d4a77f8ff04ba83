internal import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 connection to an etcd endpoint: a nonblocking TCP socket whose every wait is a
/// `poll` bounded by a deadline (monotonic nanoseconds), optionally also woken by an eventfd
/// (`wake`) so a watch can be cancelled while it waits. Closed when released.
///
/// Used by one thread at a time (a call holds it, then returns it to the transport's pool).
final class EtcdConnection: Sendable {
    let fd: Int32
    /// Index of the endpoint in the transport's list.
    let endpoint: Int

    /// Why an exchange did not give an answer.
    enum Failure: Error {
        /// The connection broke; `answered` when some of the answer had arrived.
        case lost(String, answered: Bool)
        /// The deadline passed; `sent` when the whole request had been written.
        case timeout(sent: Bool)
        /// The wake descriptor fired (cancellation).
        case woken
        /// The answer's bytes are not HTTP we accept.
        case malformed(String)
    }

    private init(fd: Int32, endpoint: Int) {
        self.fd = fd
        self.endpoint = endpoint
    }

    deinit { Posix.close(fd) }

    /// Connects to `address`, waiting at most until `deadline`.
    static func open(_ address: SocketAddress, endpoint: Int, deadline: UInt64, wake: Int32? = nil) throws(Failure)
        -> EtcdConnection
    {
        let fd: Int32
        do {
            fd = try Socket.tcp(for: address)
        } catch {
            throw .lost("socket: \(error)", answered: false)
        }
        let c = EtcdConnection(fd: fd, endpoint: endpoint)
        do {
            if try Socket.connect(fd, to: address) == .inProgress {
                try c.wait(.writable, until: deadline, wake: wake)
                let e = Socket.pendingError(fd)
                if e != 0 { throw Failure.lost("connect: \(Errno(e))", answered: false) }
            }
        } catch let error as Failure {
            throw error
        } catch {
            throw .lost("connect: \(error)", answered: false)
        }
        Socket.setNoDelay(fd)
        // A peer that vanishes without a FIN is noticed within about 11 s by the kernel.
        try? Socket.setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
        try? Socket.setOption(fd, Int32(IPPROTO_TCP), 4 /* TCP_KEEPIDLE */, 5)
        try? Socket.setOption(fd, Int32(IPPROTO_TCP), 5 /* TCP_KEEPINTVL */, 2)
        try? Socket.setOption(fd, Int32(IPPROTO_TCP), 6 /* TCP_KEEPCNT */, 3)
        return c
    }

    /// The request bytes for `POST path` with a JSON `body`.
    static func request(path: String, authority: String, body: [UInt8]) -> [UInt8] {
        var out = Array("POST \(path) HTTP/1.1\r\nHost: \(authority)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }

    /// Writes all of `bytes` by `deadline`.
    func send(_ bytes: [UInt8], until deadline: UInt64, wake: Int32? = nil) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let r: IOResult<Int>
            do {
                r = try bytes.withUnsafeBytes { raw throws(Errno) in
                    // offset < bytes.count, so the pointer stays inside the buffer.
                    try Posix.send(fd, from: raw.baseAddress! + offset, count: raw.count - offset, flags: Int32(MSG_NOSIGNAL))
                }
            } catch {
                throw .lost("send: \(error)", answered: false)
            }
            switch r {
            case .processed(let n): offset += n
            case .wouldBlock:
                do throws(Failure) {
                    try wait(.writable, until: deadline, wake: wake)
                } catch {
                    if case .timeout = error { throw .timeout(sent: false) }
                    throw error
                }
            }
        }
    }

    /// Reads what has arrived (waiting until `deadline` for something): the bytes, or empty at
    /// end of stream.
    func receive(into buffer: inout [UInt8], until deadline: UInt64, wake: Int32? = nil) throws(Failure) -> Int {
        while true {
            let r: IOResult<Int>
            do {
                r = try buffer.withUnsafeMutableBytes { raw throws(Errno) in
                    // The buffer is never empty (the caller allocates it once, 64 KiB).
                    try Posix.read(fd, into: raw.baseAddress!, count: raw.count)
                }
            } catch {
                throw .lost("read: \(error)", answered: false)
            }
            switch r {
            case .processed(let n): return n
            case .wouldBlock:
                do throws(Failure) {
                    try wait(.readable, until: deadline, wake: wake)
                } catch {
                    if case .timeout = error { throw .timeout(sent: true) }
                    throw error
                }
            }
        }
    }

    enum Interest { case readable, writable }

    /// Waits for `interest` on the socket (errors and hang-ups count as ready: the next call
    /// reports them), the wake descriptor, or the deadline.
    private func wait(_ interest: Interest, until deadline: UInt64, wake: Int32?) throws(Failure) {
        let events = interest == .readable ? Int16(POLLIN) : Int16(POLLOUT)
        while true {
            let now = Posix.monotonicNanos()
            guard now < deadline else { throw .timeout(sent: false) }
            // At most about 24 days: the quotient fits Int32 after the clamp.
            let millis = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wake ?? -1, events: Int16(POLLIN), revents: 0)]
            let n = Glibc.poll(&fds, wake == nil ? 1 : 2, millis)
            if n < 0 {
                if errno == EINTR { continue }
                throw .lost("poll: \(Errno.current)", answered: false)
            }
            if wake != nil && fds[1].revents != 0 { throw .woken }
            if fds[0].revents != 0 { return }
        }
    }
}
