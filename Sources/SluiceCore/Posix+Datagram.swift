internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// The batched datagram calls. Internal: their arguments are the C arrays a `DatagramBatch`
/// owns.
extension Posix {
    /// Receives up to `count` datagrams. `.processed(n)` with `n < count` means the socket
    /// had no more (a nonblocking `recvmmsg` stops at the first datagram that would block).
    @inline(__always)
    static func recvmmsg(_ fd: Int32, _ msgs: UnsafeMutablePointer<csluice_mmsghdr>, _ count: Int) throws(Errno) -> IOResult<Int> {
        switch try check({ csluice_recvmmsg(fd, msgs, UInt32(truncatingIfNeeded: count)) }) {
        case .processed(let n): return .processed(Int(n))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// Sends up to `count` datagrams; `.processed(n)` with `n < count` when the `n + 1`th
    /// failed (its error is reported by the next call) or would block.
    @inline(__always)
    static func sendmmsg(_ fd: Int32, _ msgs: UnsafeMutablePointer<csluice_mmsghdr>, _ count: Int) throws(Errno) -> IOResult<Int> {
        switch try check({ csluice_sendmmsg(fd, msgs, UInt32(truncatingIfNeeded: count)) }) {
        case .processed(let n): return .processed(Int(n))
        case .wouldBlock: return .wouldBlock
        }
    }
}
