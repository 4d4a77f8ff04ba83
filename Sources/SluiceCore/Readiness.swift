/// What edge-triggered epoll last said about one socket, remembered until the kernel says
/// otherwise: `readable`/`writable` are set by events and cleared only when a read or write
/// would block (or a transport says the source drained). The one readiness type of the data
/// plane: L4 connections use it for both sockets; the L7 connection types (which still keep
/// separate `readable`/`writable`/`hangup` flags) are meant to adopt it.
public struct Readiness: Sendable {
    public var readable = false
    public var writable = false
    /// epoll reported a hang-up (`EPOLLRDHUP`/`EPOLLHUP`): a short read no longer proves the
    /// socket drained, so the reader goes on to the end of input.
    public var hangup = false

    @inline(__always)
    public init() {}

    /// Records an epoll event (error events are the caller's business).
    @inline(__always)
    public mutating func note(_ events: EpollEvents) {
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup]) { readable = true }
        if !events.isDisjoint(with: [.writable, .hangup]) { writable = true }
        if !events.isDisjoint(with: [.readHangup, .hangup]) { hangup = true }
    }
}
