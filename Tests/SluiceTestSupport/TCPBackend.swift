import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real TCP server on a loopback port, one thread per connection.
public final class TCPBackend: Sendable {
    public enum Mode: Sendable {
        /// Echo every byte; on the client's FIN, finish echoing and send FIN back.
        case echo
        /// Send `name` + "\n" and close: tells a client which target it reached.
        case name(String)
        /// Accept and keep the connection open until the client closes it.
        case hold
        /// Read what arrives first, then close without answering (a target that dies mid-request).
        case closeAfterRead
    }

    public let port: UInt16
    public let mode: Mode
    private let listenFd: Int32
    private let accepted = Atomic<Int>(0)
    private let open = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    public init(mode: Mode, host: String = "127.0.0.1", port: UInt16 = 0) throws {
        (listenFd, self.port) = try TestSocket.listen(host: host, port: port)
        self.mode = mode
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    /// Connections accepted so far.
    public var acceptedCount: Int { accepted.load(ordering: .acquiring) }
    /// Connections currently open.
    public var openCount: Int { open.load(ordering: .acquiring) }

    /// Stops accepting: later connects are refused.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listenFd, Int32(SHUT_RDWR))
        close(listenFd)
    }

    deinit { stop() }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            accepted.add(1, ordering: .releasing)
            open.add(1, ordering: .releasing)
            let t = Thread { [self] in
                serve(fd)
                close(fd)
                open.subtract(1, ordering: .releasing)
            }
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        TestSocket.setTimeouts(fd, seconds: 60)
        switch mode {
        case .echo:
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if (try? TestSocket.sendAll(fd, Array(buf[0..<n]))) == nil { return }
            }
            shutdown(fd, Int32(SHUT_WR))
            _ = TestSocket.waitForClose(fd)
        case .name(let name):
            try? TestSocket.sendAll(fd, Array((name + "\n").utf8))
        case .hold:
            _ = TestSocket.waitForClose(fd)
        case .closeAfterRead:
            var buf = [UInt8](repeating: 0, count: 65536)
            _ = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        }
    }
}
