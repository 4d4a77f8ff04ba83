import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A hostile target for the data-path chaos test: for every request it reads, it picks a
/// behaviour at random (seeded): a good answer, garbage, a reset, a half-close, a slow drip,
/// a huge chunk size, an answer before the request, a close without answer, 1xx first,
/// a bad Content-Length, more bytes than declared. One thread per connection.
public final class ChaosTarget: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`; `listenFd` is set once.
    public let port: UInt16
    private let listenFd: Int32
    private let lock = NSLock()
    private var open: Set<Int32> = []
    private var stopped = false
    private let seed: UInt64
    private let counter = Atomic<UInt64>(0)
    public let answered = Atomic<Int>(0)

    public init(seed: UInt64) throws {
        self.seed = seed
        (listenFd, port) = try TestSocket.listen()
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stops accepting and closes every connection it holds.
    public func stop() {
        lock.lock()
        stopped = true
        let fds = open
        open.removeAll()
        lock.unlock()
        shutdown(listenFd, Int32(SHUT_RDWR))
        close(listenFd)
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 {
                lock.lock()
                let done = stopped
                lock.unlock()
                if done { return }
                continue
            }
            lock.lock()
            if stopped {
                lock.unlock()
                close(fd)
                return
            }
            open.insert(fd)
            lock.unlock()
            TestSocket.setTimeouts(fd, seconds: 3)
            let s = seed &+ counter.add(1, ordering: .relaxed).newValue &* 0x9E37_79B9_7F4A_7C15
            Thread { [self] in serve(fd, seed: s) }.start()
        }
    }

    private func serve(_ fd: Int32, seed: UInt64) {
        var rng = ChaosRandom(seed: seed)
        defer {
            lock.lock()
            let mine = open.remove(fd) != nil
            lock.unlock()
            _ = mine  // stop() only shuts connections down; this thread closes its own
            close(fd)
        }
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { return }
            func send(_ s: String) { _ = s.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) } }
            switch rng.next() % 12 {
            case 0, 1, 2, 3:
                send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            case 4:
                var junk = [UInt8](repeating: 0, count: Int(rng.next() % 300) + 1)
                for i in junk.indices { junk[i] = UInt8(truncatingIfNeeded: rng.next()) }
                _ = Glibc.send(fd, junk, junk.count, Int32(MSG_NOSIGNAL))
                return
            case 5:
                var l = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
                return
            case 6:
                send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nha")
                shutdown(fd, Int32(SHUT_WR))
            case 7:
                for b in "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndrip".utf8 {
                    var byte = b
                    _ = Glibc.send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
                    usleep(UInt32(rng.next() % 3000))
                }
            case 8:
                send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFFFF\r\nxx")
                return
            case 9:
                send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            case 10:
                send(rng.next() % 2 == 0 ? "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"
                                         : "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n")
                return
            default:
                send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ntoo long by far")
                return
            }
            _ = answered.add(1, ordering: .relaxed)
        }
    }
}

/// splitmix64, for reproducible chaos.
public struct ChaosRandom: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
