#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CSluice

/// Blocking socket calls for the control plane's thread-per-connection servers. Each wraps one syscall,
/// retries `EINTR`, and reports other failures as `ControlSocketError` carrying the errno.
struct ControlSocketError: Error, CustomStringConvertible {
    var operation: String
    var errno: Int32
    var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

enum ControlSocket {
    // POLLRDHUP is GNU-only, so Glibc (built without _GNU_SOURCE) does not export it; the value is ABI.
    static let pollRDHUP: Int16 = 0x2000

    /// Reads up to `max` bytes; empty on EOF. Timeouts (`SO_RCVTIMEO`) and errors throw.
    static func read(_ fd: Int32, max: Int = 16 * 1024) throws(ControlSocketError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n >= 0 {
                buffer.removeSubrange(n...)
                return buffer
            }
            if errno == EINTR { continue }
            throw ControlSocketError(operation: "recv", errno: errno)
        }
    }

    /// Writes all of `bytes` (no SIGPIPE).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(ControlSocketError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, csluice_MSG_NOSIGNAL) }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                throw ControlSocketError(operation: "send", errno: n < 0 ? errno : EPIPE)
            }
        }
    }

    /// Whether the peer has closed its side (or the socket failed), without consuming data.
    static func peerClosed(_ fd: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN) | pollRDHUP, revents: 0)
        guard poll(&pfd, 1, 0) > 0 else { return false }
        if pfd.revents & (Int16(POLLHUP) | Int16(POLLERR) | pollRDHUP) != 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// Waits up to `milliseconds` for `fd` to be readable; true when it is.
    static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let r = poll(&pfd, 1, milliseconds)
            if r < 0 && errno == EINTR { continue }
            return r > 0
        }
    }

    /// `SO_RCVTIMEO` in milliseconds (at least 1: 0 would mean "forever").
    static func setReceiveTimeout(_ fd: Int32, milliseconds: Int) {
        let ms = max(1, milliseconds)
        var tv = timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
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
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func setSendTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Blocking accept (close-on-exec); nil when interrupted by `shutdown` or on a transient error.
    static func accept(_ listener: Int32) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return fd
            }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Peer credentials of a connected Unix socket (`SO_PEERCRED`).
    static func peerCredentials(_ fd: Int32) -> (uid: uid_t, gid: gid_t, pid: pid_t)? {
        var uid: uid_t = 0
        var gid: gid_t = 0
        var pid: pid_t = 0
        guard csluice_getpeereid(fd, &uid, &gid, &pid) == 0 else { return nil }
        return (uid, gid, pid)
    }

    /// Fills a `sockaddr_un` for `path` (a leading `@` means the abstract namespace) and calls `body` with it
    /// and its length; nil when the path does not fit.
    static func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity || (abstract && bytes.count <= capacity) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let length = abstract ? pathOffset + bytes.count : MemoryLayout<sockaddr_un>.size
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(length)) }
        }
    }
}
