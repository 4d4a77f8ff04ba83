#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SluiceCore

/// A failed socket call on a control-plane connection: what was asked and the `errno`.
struct ControlSocketError: Error, CustomStringConvertible {
    var operation: String
    var errno: Int32
    var description: String { "\(operation): \(Errno(errno))" }

    init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    init(_ operation: String, _ error: Errno) {
        self.init(operation: operation, errno: error.code)
    }
}

/// Blocking I/O for the control plane's thread-per-connection servers, composed of SluiceCore's
/// `Posix`/`Socket` wrappers (no system call of its own): whole writes, reads against a deadline
/// (`SO_RCVTIMEO`), and peer checks. A timeout (the wrappers' would-block) is reported as `EAGAIN`.
enum ControlSocket {
    /// Reads up to `max` bytes; empty on EOF. Timeouts (`SO_RCVTIMEO`) and errors throw.
    static func read(_ fd: Int32, max: Int = 16 * 1024) throws(ControlSocketError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let result = buffer.withUnsafeMutableBytes { raw -> Result<IOResult<Int>, Errno> in
            Result { () throws(Errno) in try Posix.read(fd, into: raw.baseAddress!, count: raw.count) }
        }
        switch result {
        case .success(.processed(let n)):
            buffer.removeSubrange(n...)
            return buffer
        case .success(.wouldBlock):
            throw ControlSocketError(operation: "recv", errno: EAGAIN)
        case .failure(let e):
            throw ControlSocketError("recv", e)
        }
    }

    /// Writes all of `bytes` (no SIGPIPE).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(ControlSocketError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw -> Result<IOResult<Int>, Errno> in
                Result { () throws(Errno) in try Posix.send(fd, from: raw.baseAddress! + offset, count: raw.count - offset) }
            }
            switch result {
            case .success(.processed(let n)) where n > 0: offset += n
            case .success(.processed): throw ControlSocketError(operation: "send", errno: EPIPE)
            case .success(.wouldBlock): throw ControlSocketError(operation: "send", errno: EAGAIN)
            case .failure(let e): throw ControlSocketError("send", e)
            }
        }
    }

    /// Whether the peer has closed its side (or the socket failed), without consuming data.
    static func peerClosed(_ fd: Int32) -> Bool {
        guard let ready = try? Posix.poll(fd, events: [.readable, .readHangup], timeoutMillis: 0), !ready.isEmpty else {
            return false
        }
        if !ready.isDisjoint(with: [.hangup, .error, .readHangup]) { return true }
        switch Result(catching: { () throws(Errno) in try Posix.peek(fd) }) {
        case .success(.processed(let n)): return n == 0
        case .success(.wouldBlock): return false
        case .failure: return true
        }
    }

    /// Waits up to `milliseconds` for `fd` to be readable; true when it is.
    static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        guard let ready = try? Posix.poll(fd, events: .readable, timeoutMillis: milliseconds) else { return false }
        return !ready.isEmpty
    }

    /// `SO_RCVTIMEO` in milliseconds (at least 1: 0 would mean "forever").
    static func setReceiveTimeout(_ fd: Int32, milliseconds: Int) {
        try? Socket.setTimeout(fd, .receive, nanos: UInt64(max(1, milliseconds)) &* 1_000_000)
    }

    /// How reading one request ended.
    enum RequestRead {
        case request(HTTPRequest)
        /// The bytes are not a request we take: answer this error and close.
        case failure(ControlError)
        /// The peer closed before a whole request arrived.
        case closed
        /// The whole request did not arrive by the deadline.
        case timedOut
        case error(ControlSocketError)
    }

    /// Reads from `fd` into `parser` until it yields a request (or a failure), giving up at `deadline`
    /// (`monotonicNanos()` time): each read waits at most the time left, so a client trickling bytes
    /// cannot stretch the wait.
    static func readRequest(_ fd: Int32, parser: inout ControlRequestParser, deadline: UInt64) -> RequestRead {
        while true {
            switch parser.next() {
            case .request(let request): return .request(request)
            case .failure(let error): return .failure(error)
            case .needMore: break
            }
            let now = monotonicNanos()
            guard now < deadline else { return .timedOut }
            // Rounded up, so a read never waits 0 ms (which `SO_RCVTIMEO` would take as forever).
            setReceiveTimeout(fd, milliseconds: Int((deadline - now + 999_999) / 1_000_000))
            do throws(ControlSocketError) {
                let bytes = try read(fd)
                if bytes.isEmpty { return .closed }
                parser.append(bytes)
            } catch {
                if error.errno == EAGAIN || error.errno == EWOULDBLOCK { return .timedOut }
                return .error(error)
            }
        }
    }

    static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        try? Socket.setTimeout(fd, .receive, nanos: UInt64(max(0, seconds)) &* 1_000_000_000)
    }

    static func setSendTimeout(_ fd: Int32, seconds: Int) {
        try? Socket.setTimeout(fd, .send, nanos: UInt64(max(0, seconds)) &* 1_000_000_000)
    }

    /// Blocking accept (close-on-exec); nil when interrupted by `shutdown` or on a transient error.
    static func accept(_ listener: Int32) -> Int32? {
        guard case .processed(let fd)? = try? Posix.acceptBlocking(listener) else { return nil }
        return fd
    }

    /// Peer credentials of a connected Unix socket (`SO_PEERCRED`).
    static func peerCredentials(_ fd: Int32) -> (uid: uid_t, gid: gid_t, pid: pid_t)? {
        try? Socket.peerCredentials(fd)
    }

    /// Calls `body` with the `sockaddr_un` for `path` (a leading `@` means the abstract namespace)
    /// and its length; nil when the path does not fit.
    static func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R? {
        guard let address = UnixSocketAddress(path: path) else { return nil }
        return try? address.withSockaddr { (sa, length) throws(Errno) in body(sa, length) }
    }
}
