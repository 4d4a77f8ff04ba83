/// What edge-triggered epoll last said about one socket, remembered until the kernel (or the
/// transport) says otherwise: `readable`/`writable` are set by events and cleared only when a
/// read or write would block or the transport says the source drained. The one readiness type
/// of the data plane, for L4 and L7 sockets alike.
///
/// A TLS transport may need the *other* direction first (`.wantsWrite` on a read, `.wantsRead`
/// on a write): the waiting direction is then woken by the other direction's event.
public struct Readiness: Sendable {
    public var readable = false
    public var writable = false
    /// epoll reported a hang-up (`EPOLLRDHUP`/`EPOLLHUP`): a short read no longer proves the
    /// socket drained, so the reader goes on to the end of input.
    public var hangup = false
    /// The last read asked for writability (`.wantsWrite`).
    public var readWaitsForWritable = false
    /// The last write asked for readability (`.wantsRead`).
    public var writeWaitsForReadable = false

    /// What one transport call did, for the caller.
    public enum Step: Sendable { case moved(Int), wait, closed, failed }

    @inline(__always)
    public init() {}

    /// Records an epoll event (error events are the caller's business).
    @inline(__always)
    public mutating func note(_ events: EpollEvents) {
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) { noteReadable() }
        if !events.isDisjoint(with: [.writable, .hangup]) { noteWritable() }
        if !events.isDisjoint(with: [.readHangup, .hangup]) { hangup = true }
    }

    /// A readable (or hang-up) event: reads may go on, and so may a write that waited for it.
    @inline(__always)
    public mutating func noteReadable() {
        readable = true
        if writeWaitsForReadable {
            writeWaitsForReadable = false
            writable = true
        }
    }

    /// A writable event: writes may go on, and so may a read that waited for it.
    @inline(__always)
    public mutating func noteWritable() {
        writable = true
        if readWaitsForWritable {
            readWaitsForWritable = false
            readable = true
        }
    }

    /// Reads through `transport`; clears `readable` when the transport says the socket is
    /// empty for now (its short-read rule, would-block, or waiting for writability).
    @inline(__always)
    public mutating func read(_ transport: Transport, _ fd: Int32, into buffer: UnsafeMutableRawPointer,
                              count: Int) -> Step {
        switch transport.read(fd, into: buffer, count: count, hangupSeen: hangup) {
        case .bytes(let n):
            return .moved(n)
        case .drained(let n):
            readable = false
            return n > 0 ? .moved(n) : .wait
        case .wouldBlock, .wantsRead:
            readable = false
            return .wait
        case .wantsWrite:
            readable = false
            readWaitsForWritable = true
            return .wait
        case .closed:
            return .closed
        case .failed:
            return .failed
        }
    }

    /// Writes through `transport`; clears `writable` when the socket is full for now (or the
    /// transport waits for readability).
    @inline(__always)
    public mutating func write(_ transport: Transport, _ fd: Int32, from buffer: UnsafeRawPointer,
                               count: Int) -> Step {
        switch transport.write(fd, from: buffer, count: count) {
        case .bytes(let n):
            return .moved(n)
        case .drained(let n):
            writable = false
            return n > 0 ? .moved(n) : .wait
        case .wouldBlock, .wantsWrite:
            writable = false
            return .wait
        case .wantsRead:
            writable = false
            writeWaitsForReadable = true
            return .wait
        case .closed, .failed:
            return .failed
        }
    }
}
