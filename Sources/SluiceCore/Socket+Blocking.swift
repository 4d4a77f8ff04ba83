internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// Socket calls for the control plane's blocking, thread-per-connection servers and clients
/// (Unix control socket, metrics port, sd_notify). Same rules as `Posix`: one wrapper per
/// system call, `EINTR` retried, would-block (a `SO_RCVTIMEO`/`SO_SNDTIMEO` timeout on a
/// blocking socket) as `.wouldBlock`, `EBADF`/`EFAULT` trap, any other `errno` thrown as `Errno`.
/// Never on a worker.
extension Socket {
    /// A blocking, close-on-exec Unix-domain socket (`SOCK_STREAM` or `SOCK_DGRAM`).
    public static func unix(datagram: Bool = false) throws(Errno) -> Int32 {
        let type = Int32(datagram ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        return try Posix.checkNoBlock { Glibc.socket(AF_UNIX, type, 0) }
    }

    /// A blocking, close-on-exec socket of `family` (`AF_INET`, `AF_INET6`) and `SOCK_STREAM`.
    public static func stream(family: Int32) throws(Errno) -> Int32 {
        try Posix.checkNoBlock { Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    public static func bind(_ fd: Int32, to address: UnixSocketAddress) throws(Errno) {
        _ = try address.withSockaddr { (sa, len) throws(Errno) in try Posix.checkNoBlock { Glibc.bind(fd, sa, len) } }
    }

    public static func bind(_ fd: Int32, to address: SocketAddress) throws(Errno) {
        _ = try Posix.checkNoBlock { address.withSockaddr { Glibc.bind(fd, $0, $1) } }
    }

    public static func listen(_ fd: Int32, backlog: Int32) throws(Errno) {
        _ = try Posix.checkNoBlock { Glibc.listen(fd, backlog) }
    }

    /// A blocking connect. A connect interrupted by a signal goes on in the kernel; asking again
    /// reports `EALREADY` until it is done, then `EISCONN`, which is success.
    public static func connect(_ fd: Int32, to address: UnixSocketAddress) throws(Errno) {
        while true {
            let r = try address.withSockaddr { (sa, len) throws(Errno) -> Int32 in Glibc.connect(fd, sa, len) }
            if r == 0 { return }
            switch errno {
            case EINTR, EALREADY: continue
            case EISCONN: return
            case EBADF, EFAULT: preconditionFailure("connect on a bad descriptor or address: errno \(errno)")
            case let e: throw Errno(e)
            }
        }
    }

    /// Sends one datagram to `address` (no SIGPIPE); returns the bytes sent.
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, to address: UnixSocketAddress) throws(Errno) -> IOResult<Int> {
        try address.withSockaddr { (sa, len) throws(Errno) -> IOResult<Int> in
            try Posix.check { Glibc.sendto(fd, bytes.baseAddress, bytes.count, csluice_MSG_NOSIGNAL, sa, len) }
        }
    }

    /// Which timeout `setTimeout` sets.
    public enum TimeoutKind: Sendable { case receive, send }

    /// `SO_RCVTIMEO` / `SO_SNDTIMEO`: a blocked read or write gives up after `nanos` and reports
    /// would-block. 0 means "never" to the kernel, so callers wanting a bound pass at least 1 µs.
    public static func setTimeout(_ fd: Int32, _ kind: TimeoutKind, nanos: UInt64) throws(Errno) {
        // Seconds ≤ UInt64.max / 10^9 < Int.max: the conversions cannot trap.
        var tv = timeval(tv_sec: Int(nanos / 1_000_000_000), tv_usec: Int(nanos % 1_000_000_000 / 1000))
        let name = kind == .receive ? SO_RCVTIMEO : SO_SNDTIMEO
        _ = try Posix.checkNoBlock { setsockopt(fd, SOL_SOCKET, name, &tv, socklen_t(MemoryLayout<timeval>.size)) }
    }

    /// Credentials of the process at the other end of a connected Unix socket (`SO_PEERCRED`).
    /// (`uid_t`, `gid_t` and `pid_t` are `UInt32`, `UInt32` and `Int32` on Linux.)
    public static func peerCredentials(_ fd: Int32) throws(Errno) -> (uid: UInt32, gid: UInt32, pid: Int32) {
        var uid: uid_t = 0
        var gid: gid_t = 0
        var pid: pid_t = 0
        _ = try Posix.checkNoBlock { csluice_getpeereid(fd, &uid, &gid, &pid) }
        return (uid, gid, pid)
    }
}

extension Posix {
    /// Accepts one connection on a blocking listener as a *blocking*, close-on-exec socket (the
    /// control plane's thread-per-connection servers; workers use `accept`).
    public static func acceptBlocking(_ fd: Int32) throws(Errno) -> IOResult<Int32> {
        try check { csluice_accept4_blocking(fd) }
    }

    /// Sends from `buffer` on a connected socket without raising SIGPIPE (`MSG_NOSIGNAL`).
    public static func send(_ fd: Int32, from buffer: UnsafeRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try check { Glibc.send(fd, buffer, count, csluice_MSG_NOSIGNAL) }
    }

    /// Looks at the next byte without consuming it and without blocking: `.processed(0)` is end of
    /// input, `.wouldBlock` means nothing is waiting.
    public static func peek(_ fd: Int32) throws(Errno) -> IOResult<Int> {
        var byte: UInt8 = 0
        return try check { Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) }
    }

    /// Readiness bits for `poll`.
    public struct PollEvents: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = PollEvents(rawValue: Int16(POLLIN))
        // POLLRDHUP is GNU-only, so Glibc (built without _GNU_SOURCE) does not export it; the value is ABI.
        public static let readHangup = PollEvents(rawValue: 0x2000)
        public static let hangup = PollEvents(rawValue: Int16(POLLHUP))
        public static let error = PollEvents(rawValue: Int16(POLLERR))
    }

    /// Waits up to `timeoutMillis` (-1: forever) for `events` on one descriptor; returns what
    /// happened, empty on timeout. An interrupted wait starts again with the whole timeout.
    public static func poll(_ fd: Int32, events: PollEvents, timeoutMillis: Int32) throws(Errno) -> PollEvents {
        var p = pollfd(fd: fd, events: events.rawValue, revents: 0)
        let n = try checkNoBlock { Glibc.poll(&p, 1, timeoutMillis) }
        return n > 0 ? PollEvents(rawValue: p.revents) : []
    }
}
