internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// Socket set-up calls: creating, binding, listening, connecting and options. Cold path
/// except `connect`, which runs once per proxied connection.
public enum Socket {
    /// Outcome of a nonblocking connect.
    public enum ConnectResult: Sendable { case connected, inProgress }

    /// A nonblocking, close-on-exec TCP socket for `address`'s family.
    @inline(__always)
    public static func tcp(for address: SocketAddress) throws(Errno) -> Int32 {
        let fd = csluice_socket_nonblocking(address.family, Int32(SOCK_STREAM.rawValue))
        if fd < 0 { throw Errno.current }
        return fd
    }

    /// A listening socket bound to `address`. `reusePort` lets every worker have its own
    /// socket on the same address (the kernel spreads connections among them).
    public static func listen(on address: SocketAddress, reusePort: Bool, backlog: Int32 = 4096) throws(Errno) -> Int32 {
        let fd = try tcp(for: address)
        do throws(Errno) {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if address.isIPv6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt saved per connection.
            try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            let r = address.withSockaddr { Glibc.bind(fd, $0, $1) }
            if r != 0 { throw Errno.current }
            if Glibc.listen(fd, backlog) != 0 { throw Errno.current }
        } catch {
            Posix.close(fd)
            throw error
        }
        return fd
    }

    /// Starts a nonblocking connect on `fd`.
    @inline(__always)
    public static func connect(_ fd: Int32, to address: SocketAddress) throws(Errno) -> ConnectResult {
        while true {
            let r = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return .connected }
            switch errno {
            case EINTR: continue
            case EINPROGRESS: return .inProgress
            case let e: throw Errno(e)
            }
        }
    }

    /// The pending error of a socket (`SO_ERROR`), 0 when none: how a nonblocking connect ended.
    public static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &len) != 0 { return errno }
        return value
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var v = value
        if setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 { throw Errno.current }
    }

    /// Disables Nagle: proxied bytes leave as soon as they arrive.
    @inline(__always)
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The local address a socket is bound to.
    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        var a = SocketAddress()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &a.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return r == 0 ? a : nil
    }

    /// Makes `close` send a reset instead of a FIN (SO_LINGER 0): used when a peer vanished.
    public static func setResetOnClose(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }
}
