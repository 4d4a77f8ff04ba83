import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Blocking loopback sockets for tests: real kernel TCP, no mocks.
public enum TestSocket {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    /// Calls `body` with `host:port` (an IPv4 or IPv6 literal) as a `sockaddr` and its length.
    public static func withSockaddr<R>(host: String, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if host.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &a.sin6_addr)
            return withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &a.sin_addr)
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// The local port a socket is bound to.
    public static func localPort(_ fd: Int32) -> UInt16 {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return withUnsafeBytes(of: ss) { raw in
            Int32(ss.ss_family) == AF_INET6 ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// Connects a socket of `type` (TCP by default; UDP: a connected datagram socket) to
    /// `host:port` (IPv4 or IPv6 literal); throws with errno text on failure.
    public static func connect(port: UInt16, host: String = "127.0.0.1", timeoutSeconds: Int = 10,
                               type: Int32 = Int32(SOCK_STREAM.rawValue)) throws -> Int32 {
        let fd = socket(host.contains(":") ? AF_INET6 : AF_INET, type, 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        setTimeouts(fd, seconds: timeoutSeconds)
        let r = withSockaddr(host: host, port: port) { Glibc.connect(fd, $0, $1) }
        if r != 0 {
            let e = errno
            close(fd)
            throw Failure("connect \(host):\(port): \(String(cString: strerror(e)))")
        }
        return fd
    }

    /// Receive/send timeouts so a broken proxy fails a test instead of hanging it.
    public static func setTimeouts(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A listening socket on an ephemeral loopback port; returns (fd, port).
    public static func listen(host: String = "127.0.0.1", port: UInt16 = 0, backlog: Int32 = 1024) throws -> (Int32, UInt16) {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        let r = withSockaddr(host: host, port: port) { bind(fd, $0, $1) }
        guard r == 0, Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            close(fd)
            throw Failure("listen \(host):\(port): \(String(cString: strerror(e)))")
        }
        let bound = localPort(fd)
        return (fd, bound)
    }

    /// A loopback port that was free a moment ago (bound, read, released).
    public static func freePort() throws -> UInt16 {
        let (fd, port) = try listen()
        close(fd)
        return port
    }

    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("send: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Reads until EOF (or `limit` bytes); throws on error or timeout.
    public static func receiveAll(_ fd: Int32, limit: Int = .max) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, limit - out.count), 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("recv after \(out.count) bytes: \(String(cString: strerror(errno)))")
            }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Reads exactly `count` bytes or throws.
    public static func receive(_ fd: Int32, count: Int) throws -> [UInt8] {
        let got = try receiveAll(fd, limit: count)
        guard got.count == count else { throw Failure("expected \(count) bytes, got \(got.count) before EOF") }
        return got
    }

    /// True when the peer closed: recv returns 0 (or a reset) within the socket's timeout.
    public static func waitForClose(_ fd: Int32) -> Bool {
        var b: UInt8 = 0
        while true {
            let n = recv(fd, &b, 1, 0)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    public static func shutdownWrite(_ fd: Int32) { shutdown(fd, Int32(SHUT_WR)) }
}

/// FNV-1a 64 over bytes: enough to compare payloads that crossed the proxy.
public func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}

/// Deterministic pseudo-random bytes (xorshift), so failures can be replayed.
public func randomPayload(count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        withUnsafeBytes(of: x) { w in
            for j in 0..<8 where i + j < count { out[i + j] = w[j] }
        }
        i += 8
    }
    return out
}
