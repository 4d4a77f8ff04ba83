#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address held in a `sockaddr_storage`, so it can be passed to the
/// kernel without conversion and compared or hashed by value.
public struct SocketAddress: @unchecked Sendable {
    // @unchecked: sockaddr_storage is plain bytes with no pointers inside.
    public var storage = sockaddr_storage()

    public init() {}

    /// Builds from a numeric host (`127.0.0.1`, `::1`) and a port; nil if the host is not numeric.
    public init?(host: String, port: UInt16) {
        var s = sockaddr_storage()
        if host.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else { return nil }
            withUnsafeMutableBytes(of: &s) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { return nil }
            withUnsafeMutableBytes(of: &s) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
        }
        storage = s
    }

    public var family: Int32 { Int32(storage.ss_family) }
    public var isIPv6: Bool { family == AF_INET6 }
    public var isIPv4: Bool { family == AF_INET }

    /// The IPv4 address with its first octet in the top byte (`10.1.2.3` → `0x0A01_0203`);
    /// nil when this is not an IPv4 address.
    public var ipv4Address: UInt32? {
        guard family == AF_INET else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            UInt32(bigEndian: raw.load(as: sockaddr_in.self).sin_addr.s_addr)
        }
    }

    /// The IPv6 address as two words, bytes 0...7 in `.0` and 8...15 in `.1`, each with its
    /// first byte on top (`::1` → `(0, 1)`); nil when this is not an IPv6 address.
    public var ipv6Address: (UInt64, UInt64)? {
        guard family == AF_INET6 else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            // sin6_addr is 16 bytes in network order at a fixed offset; loadUnaligned reads
            // each half without arithmetic on the bytes.
            let offset = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
            return (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
        }
    }

    /// Bytes of the address the kernel needs (`sockaddr_in` or `sockaddr_in6`).
    public var length: socklen_t {
        socklen_t(isIPv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            isIPv6 ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// The numeric host text (`127.0.0.1`, `::1`).
    public var host: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        withUnsafeBytes(of: storage) { raw in
            if isIPv6 {
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
            } else {
                var a = raw.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
            }
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The numeric host text, formatted into a stack buffer (no allocation).
    @inline(__always)
    public func withHostText<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &buf) { out in
            let p = out.baseAddress!.assumingMemoryBound(to: CChar.self)
            withUnsafeBytes(of: storage) { raw in
                if isIPv6 {
                    var a = raw.load(as: sockaddr_in6.self).sin6_addr
                    _ = inet_ntop(AF_INET6, &a, p, socklen_t(out.count))
                } else {
                    var a = raw.load(as: sockaddr_in.self).sin_addr
                    _ = inet_ntop(AF_INET, &a, p, socklen_t(out.count))
                }
            }
            return body(UnsafeRawBufferPointer(start: out.baseAddress, count: strlen(p)))
        }
    }

    /// The address bytes and port, for hashing flows without allocating.
    @inline(__always)
    public func withAddressBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            if isIPv6 {
                // sin6_port (2) + sin6_flowinfo (4) + sin6_addr (16): hash port + address.
                return body(UnsafeRawBufferPointer(rebasing: raw[2..<24]))
            }
            return body(UnsafeRawBufferPointer(rebasing: raw[2..<8]))  // port + IPv4 address
        }
    }

    @inline(__always)
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

extension SocketAddress: CustomStringConvertible {
    /// `127.0.0.1:80` or `[::1]:80`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
