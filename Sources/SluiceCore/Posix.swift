internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// One wrapper per system call the data plane uses. Each retries on `EINTR`, returns
/// `EAGAIN` as `.wouldBlock`, traps on `EBADF`/`EFAULT` (those are our bugs) and throws any
/// other `errno` as `Errno`.
public enum Posix {
    @inline(__always)
    static func check<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> IOResult<T> {
        while true {
            let r = call()
            if r >= 0 { return .processed(r) }
            let e = errno
            switch e {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case EBADF, EFAULT: preconditionFailure("system call on a bad descriptor or address: errno \(e)")
            default: throw Errno(e)
            }
        }
    }

    /// Like `check`, for calls that never legitimately block.
    @inline(__always)
    static func checkNoBlock<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> T {
        switch try check(call) {
        case .processed(let v): return v
        case .wouldBlock: throw Errno(EAGAIN)
        }
    }

    public static func close(_ fd: Int32) {
        // Linux releases the descriptor even when close reports EINTR: never retry.
        _ = Glibc.close(fd)
    }

    /// Accepts one connection as a nonblocking, close-on-exec socket; fills `address`.
    @inline(__always)
    public static func accept(_ fd: Int32, address: inout SocketAddress) throws(Errno) -> IOResult<Int32> {
        try withUnsafeMutablePointer(to: &address.storage) { (p) throws(Errno) -> IOResult<Int32> in
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            return try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(Errno) -> IOResult<Int32> in
                try check { csluice_accept4(fd, sa, &len) }
            }
        }
    }

    /// Moves up to `count` bytes between descriptors without copying (one side must be a pipe).
    /// `.processed(0)` means end of input.
    @inline(__always)
    public static func splice(from source: Int32, to destination: Int32, count: Int) throws(Errno) -> IOResult<Int> {
        try check { csluice_splice(source, destination, count) }
    }

    @inline(__always)
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try check { Glibc.read(fd, buffer, count) }
    }

    /// Copies up to `count` bytes of what a socket has received without consuming them
    /// (`recv` with `MSG_PEEK`): a later read returns the same bytes. `.processed(0)` means
    /// end of input.
    @inline(__always)
    public static func peek(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try check { Glibc.recv(fd, buffer, count, Int32(MSG_PEEK)) }
    }

    @inline(__always)
    public static func write(_ fd: Int32, from buffer: UnsafeRawPointer, count: Int) throws(Errno) -> IOResult<Int> {
        try check { Glibc.write(fd, buffer, count) }
    }

    /// `send(2)` with `flags` (`MSG_MORE` to hold a segment back for a FIN that follows).
    @inline(__always)
    public static func send(_ fd: Int32, from buffer: UnsafeRawPointer, count: Int, flags: Int32) throws(Errno)
        -> IOResult<Int>
    {
        try check { Glibc.send(fd, buffer, count, flags) }
    }

    /// More is coming (a FIN, from `shutdown` or `close`): the kernel may send both in one
    /// segment. Never raises SIGPIPE.
    public static let sendMore = Int32(MSG_MORE) | Int32(MSG_NOSIGNAL)

    /// Half-closes or closes a socket; errors (`ENOTCONN` after a reset) are not interesting here.
    public static func shutdown(_ fd: Int32, how: Int32) {
        _ = Glibc.shutdown(fd, how)
    }

    public static let shutdownWrite = Int32(SHUT_WR)
    public static let shutdownBoth = Int32(SHUT_RDWR)

    /// A nonblocking pipe; returns (read end, write end). `size` asks for that many bytes of buffer.
    public static func pipe(size: Int) throws(Errno) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let r = fds.withUnsafeMutableBufferPointer { csluice_pipe2_nonblocking($0.baseAddress!) }
        if r != 0 { throw Errno.current }
        if size > 0 { _ = csluice_pipe_set_size(fds[1], Int32(size)) }
        return (fds[0], fds[1])
    }

    /// The pipe's buffer size in bytes.
    public static func pipeSize(_ fd: Int32) -> Int { Int(csluice_pipe_get_size(fd)) }

    public static func eventfd() throws(Errno) -> Int32 {
        let fd = csluice_eventfd()
        if fd < 0 { throw Errno.current }
        return fd
    }

    /// Adds 1 to an eventfd's counter, waking its reader.
    public static func signalEventfd(_ fd: Int32) {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Resets an eventfd's counter.
    public static func drainEventfd(_ fd: Int32) {
        var value: UInt64 = 0
        _ = Glibc.read(fd, &value, 8)
    }

    /// Blocks until `fd` is readable or `timeoutNanos` passed (rounded up to a millisecond,
    /// capped at one minute so the conversion to poll's Int32 cannot overflow). Control-plane
    /// threads only, never a worker.
    public static func waitReadable(_ fd: Int32, timeoutNanos: UInt64) {
        let millis = Int32(min(timeoutNanos / 1_000_000 + 1, 60_000))  // ≤ 60 000: fits Int32
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = Glibc.poll(&p, 1, millis)
    }

    /// Number of CPUs this process may use.
    public static func cpuCount() -> Int { Int(csluice_cpu_count()) }

    public static func setThreadName(_ name: String) { _ = csluice_set_thread_name(name) }

    /// The monotonic clock in nanoseconds.
    @inline(__always)
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
