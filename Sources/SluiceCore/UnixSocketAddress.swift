#if canImport(Glibc)
import Glibc
#endif

/// A Unix-domain socket address (`sockaddr_un`): a filesystem path, or with a leading `@` a name
/// in the abstract namespace (the `@` becomes the leading NUL; the length, not a terminator,
/// ends the name).
public struct UnixSocketAddress: @unchecked Sendable {
    // @unchecked: sockaddr_un is plain bytes with no pointers inside.
    private var storage = sockaddr_un()
    /// Bytes of `storage` the kernel is given.
    public let length: socklen_t

    /// Bytes in `sun_path` (108 on Linux): a filesystem path has at most one fewer.
    public static let pathCapacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    /// Nil when `path` is empty or does not fit `sun_path` (with its terminator, unless abstract).
    public init?(path: String) {
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity || (abstract && bytes.count <= capacity) else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        // ≤ MemoryLayout<sockaddr_un>.size (checked against capacity above): fits socklen_t.
        length = socklen_t(abstract ? pathOffset + bytes.count : MemoryLayout<sockaddr_un>.size)
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(Errno) -> R) throws(Errno) -> R {
        var copy = storage
        return try withUnsafePointer(to: &copy) { (p) throws(Errno) -> R in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(Errno) -> R in try body(sa, length) }
        }
    }
}
