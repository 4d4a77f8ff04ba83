internal import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 connection to an etcd endpoint: a nonblocking TCP socket whose every wait is a
/// `poll` bounded by a deadline (monotonic nanoseconds), optionally also woken by an eventfd
/// (`wake`) so a watch can be cancelled while it waits. Closed when released.
///
/// `@unchecked Sendable`: used by one thread at a time (a call holds it, then hands it back to
/// the transport's pool under its Mutex); the TLS stream is only touched by that thread.
final class EtcdConnection: @unchecked Sendable {
    let fd: Int32
    /// Index of the endpoint in the transport's list.
    let endpoint: Int
    /// The TLS layer on `fd` for `https://` endpoints.
    private var tls: TLSStream?

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

    /// Connects to `address` (and completes a TLS handshake with `tls` when given: the
    /// certificate must match `serverName`), waiting at most until `deadline`.
    static func open(_ address: SocketAddress, endpoint: Int, tls: TLSClientContext? = nil, serverName: String = "",
                     deadline: UInt64, wake: Int32? = nil) throws(Failure) -> EtcdConnection
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
        if let tls {
            guard let stream = tls.makeStream(fd: fd, serverName: serverName) else {
                throw .lost("TLS: cannot make a session", answered: false)
            }
            c.tls = stream
            while true {
                switch stream.handshake() {
                case .done: return c
                case .wantsRead: try c.wait(.readable, until: deadline, wake: wake)
                case .wantsWrite: try c.wait(.writable, until: deadline, wake: wake)
                case .failed(let f): throw .lost("TLS handshake: \(f.rawValue) \(stream.failureDetail)", answered: false)
                }
            }
        }
        return c
    }

    deinit {
        tls?.shutdown()
        Posix.close(fd)
    }

    /// The request bytes for `POST path` with a JSON `body`.
    static func request(path: String, authority: String, body: [UInt8]) -> [UInt8] {
        var out = Array("POST \(path) HTTP/1.1\r\nHost: \(authority)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        out.append(contentsOf: body)
        return out
    }

    /// Writes all of `bytes` by `deadline`.
    func send(_ bytes: [UInt8], until deadline: UInt64, wake: Int32? = nil) throws(Failure) {
        if let tls { return try sendTLS(tls, bytes, until: deadline, wake: wake) }
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
        if let tls { return try receiveTLS(tls, into: &buffer, until: deadline, wake: wake) }
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

    private func sendTLS(_ tls: TLSStream, _ bytes: [UInt8], until deadline: UInt64, wake: Int32?) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            // offset < bytes.count, so the pointer stays inside the buffer.
            let r = bytes.withUnsafeBytes { tls.write(from: $0.baseAddress! + offset, count: $0.count - offset) }
            switch r {
            case .bytes(let n), .drained(let n): offset += n
            case .wouldBlock: try waitSending(.writable, until: deadline, wake: wake)
            case .wantsRead: try waitSending(.readable, until: deadline, wake: wake)
            case .wantsWrite: try waitSending(.writable, until: deadline, wake: wake)
            case .closed: throw .lost("TLS: closed while sending", answered: false)
            case .failed(let e): throw .lost("TLS send: \(e) \(tls.failureDetail)", answered: false)
            }
        }
    }

    private func waitSending(_ interest: Interest, until deadline: UInt64, wake: Int32?) throws(Failure) {
        do throws(Failure) {
            try wait(interest, until: deadline, wake: wake)
        } catch {
            if case .timeout = error { throw .timeout(sent: false) }
            throw error
        }
    }

    private func receiveTLS(_ tls: TLSStream, into buffer: inout [UInt8], until deadline: UInt64, wake: Int32?)
        throws(Failure) -> Int
    {
        while true {
            // The buffer is never empty (the caller allocates it once, 64 KiB).
            let r = buffer.withUnsafeMutableBytes { tls.read(into: $0.baseAddress!, count: $0.count) }
            var interest = Interest.readable
            switch r {
            case .bytes(let n) where n > 0, .drained(let n) where n > 0: return n
            case .bytes, .drained, .wouldBlock: interest = .readable
            case .wantsWrite: interest = .writable
            case .wantsRead: interest = .readable
            case .closed: return 0
            case .failed(let e): throw .lost("TLS read: \(e) \(tls.failureDetail)", answered: false)
            }
            do throws(Failure) {
                try wait(interest, until: deadline, wake: wake)
            } catch {
                if case .timeout = error { throw .timeout(sent: true) }
                throw error
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
