internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// Readiness bits of an epoll event.
public struct EpollEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readable = EpollEvents(rawValue: csluice_EPOLLIN)
    public static let writable = EpollEvents(rawValue: csluice_EPOLLOUT)
    public static let readHangup = EpollEvents(rawValue: csluice_EPOLLRDHUP)
    public static let hangup = EpollEvents(rawValue: csluice_EPOLLHUP)
    public static let error = EpollEvents(rawValue: csluice_EPOLLERR)
    public static let edgeTriggered = EpollEvents(rawValue: csluice_EPOLLET)
}

/// One epoll instance and its event batch, owned by one thread.
///
/// The batch is allocated once; `wait` fills it and `event(at:)` reads it back, so the loop
/// allocates nothing per iteration.
public final class Epoll {
    public let fd: Int32
    private let batch: UnsafeMutablePointer<epoll_event>
    public let capacity: Int

    public init(capacity: Int = 256) throws(Errno) {
        let fd = csluice_epoll_create()
        if fd < 0 { throw Errno.current }
        self.fd = fd
        self.capacity = capacity
        batch = .allocate(capacity: capacity)
    }

    deinit {
        batch.deallocate()
        Posix.close(fd)
    }

    public func add(_ target: Int32, events: EpollEvents, data: UInt64) throws(Errno) {
        if csluice_epoll_ctl(fd, csluice_EPOLL_CTL_ADD, target, events.rawValue, data) != 0 { throw Errno.current }
    }

    public func modify(_ target: Int32, events: EpollEvents, data: UInt64) throws(Errno) {
        if csluice_epoll_ctl(fd, csluice_EPOLL_CTL_MOD, target, events.rawValue, data) != 0 { throw Errno.current }
    }

    /// Removes `target`; closing a descriptor removes it too, so errors are ignored.
    public func remove(_ target: Int32) {
        _ = csluice_epoll_ctl(fd, csluice_EPOLL_CTL_DEL, target, 0, 0)
    }

    /// Waits up to `timeoutMillis` (-1: forever) and returns the number of events in the batch.
    @inline(__always)
    public func wait(timeoutMillis: Int32) -> Int {
        let n = csluice_epoll_wait(fd, batch, Int32(capacity), timeoutMillis)
        return n < 0 ? 0 : Int(n)  // EINTR: an empty round
    }

    /// The `i`th event of the last `wait`.
    @inline(__always)
    public func event(at i: Int) -> (data: UInt64, events: EpollEvents) {
        let p = batch + i
        return (csluice_epoll_event_data(p), EpollEvents(rawValue: csluice_epoll_event_events(p)))
    }
}

@available(*, unavailable)
extension Epoll: Sendable {}
