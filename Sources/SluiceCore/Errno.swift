#if canImport(Glibc)
import Glibc
#endif

/// A failed system call's `errno`, typed so throwing it does not allocate.
public struct Errno: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }

    /// The calling thread's current `errno`.
    @inline(__always)
    public static var current: Errno { Errno(errno) }

    public var description: String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    public static let addressInUse = Errno(EADDRINUSE)
    public static let wouldBlock = Errno(EAGAIN)
    public static let inProgress = Errno(EINPROGRESS)
}

/// The outcome of a nonblocking operation: it did some work, or the kernel would have to wait.
public enum IOResult<Value> {
    case processed(Value)
    case wouldBlock
}

extension IOResult: Sendable where Value: Sendable {}
