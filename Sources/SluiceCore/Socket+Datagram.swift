internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// UDP sockets: the listener side (bound once per worker with `SO_REUSEPORT`, reporting each
/// datagram's destination address when bound to a wildcard address) and the flow side (a
/// socket connected to one target). Cold path except `connectedDatagram`, once per flow.
extension Socket {
    /// A nonblocking, close-on-exec UDP socket for `address`'s family.
    @inline(__always)
    public static func udp(for address: SocketAddress) throws(Errno) -> Int32 {
        let fd = csluice_socket_nonblocking(address.family, Int32(SOCK_DGRAM.rawValue))
        if fd < 0 { throw Errno.current }
        return fd
    }

    /// A UDP socket bound to `address`. `reusePort` lets every worker have its own socket on
    /// the same address: the kernel hashes each client address to one of them, always the
    /// same while the set of sockets stays. No `SO_REUSEADDR`: for UDP it would let a second
    /// socket share the address silently (the probe bind relies on a conflict failing).
    /// A wildcard address (`0.0.0.0`, `::`) asks for each datagram's destination address, so
    /// replies can leave from the address the client wrote to.
    public static func bindDatagram(on address: SocketAddress, reusePort: Bool) throws(Errno) -> Int32 {
        let fd = try udp(for: address)
        do throws(Errno) {
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if address.isIPv6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            if address.isUnspecified, csluice_enable_pktinfo(fd, address.isIPv6 ? 1 : 0) != 0 { throw Errno.current }
            let r = address.withSockaddr { Glibc.bind(fd, $0, $1) }
            if r != 0 { throw Errno.current }
        } catch {
            Posix.close(fd)
            throw error
        }
        return fd
    }

    /// A nonblocking UDP socket connected to `address` (the kernel picks the local port):
    /// sends need no address, and only `address` can answer on it. A UDP connect completes at
    /// once; it fails only when there is no route.
    @inline(__always)
    public static func connectedDatagram(to address: SocketAddress) throws(Errno) -> Int32 {
        let fd = try udp(for: address)
        while true {
            let r = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return fd }
            let e = errno
            if e == EINTR { continue }
            Posix.close(fd)
            throw Errno(e)
        }
    }
}

extension SocketAddress {
    /// The wildcard address of its family (`0.0.0.0`, `::`): a socket bound to it receives on
    /// every local address.
    public var isUnspecified: Bool {
        if let v4 = ipv4Address { return v4 == 0 }
        if let v6 = ipv6Address { return v6.0 == 0 && v6.1 == 0 }
        return false
    }

    /// The same address with another port.
    public func withPort(_ port: UInt16) -> SocketAddress {
        var a = self
        withUnsafeMutableBytes(of: &a.storage) { raw in
            // sin_port and sin6_port sit at the same offset (2), in network order.
            raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
        }
        return a
    }
}
