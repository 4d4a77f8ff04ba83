#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SluiceCore
import Synchronization

/// The `control.metrics` TCP listener: `GET /metrics` (anything else 404), one response per connection.
///
/// Plain TCP, open to whoever can reach the port: one thread per connection, at most
/// `limits.maxConnections` at once; further connections wait in the listen backlog, and a client must send
/// its whole request within `limits.requestTimeout` (see `ConnectionLimits`).
public final class MetricsServer: Sendable {
    public let host: String
    public let requestedPort: UInt16
    public let limits: ConnectionLimits
    let slots: ConnectionSlots
    private let backend: any ControlBackend

    private struct State {
        var listener: Int32 = -1
        var port: UInt16 = 0
        var stopping = false
        var acceptThreadDone: DispatchSemaphore?
    }

    private let state = Mutex(State())

    /// `host` is a numeric IPv4/IPv6 address or a name; port 0 picks a free port (see `port`).
    public init(address host: String, port: UInt16, backend: any ControlBackend, limits: ConnectionLimits = .metrics) {
        self.host = host
        self.requestedPort = port
        self.limits = limits
        self.slots = ConnectionSlots(limits)
        self.backend = backend
    }

    /// The bound port (after `start`).
    public var port: UInt16 { state.withLock { $0.port } }

    public func start() throws(ControlServerError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let host = self.host.hasPrefix("[") && self.host.hasSuffix("]") ? String(self.host.dropFirst().dropLast()) : self.host
        let rc = getaddrinfo(host.isEmpty ? nil : host, String(requestedPort), &hints, &list)
        guard rc == 0, let first = list else {
            throw ControlServerError(message: "metrics listener \(self.host):\(requestedPort): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        // The resolved address (IPv4 or IPv6) copied into a SocketAddress: the calls below are SluiceCore's.
        var address = SocketAddress()
        withUnsafeMutableBytes(of: &address.storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: min(Int(first.pointee.ai_addrlen), dst.count)))
        }
        let fd: Int32
        do throws(Errno) {
            fd = try Socket.stream(family: address.family)
        } catch {
            throw failure("socket", error)
        }
        do throws(Errno) {
            try Socket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try Socket.bind(fd, to: address)
        } catch {
            Posix.close(fd)
            throw failure("bind", error)
        }
        do throws(Errno) {
            try Socket.listen(fd, backlog: 64)
        } catch {
            Posix.close(fd)
            throw failure("listen", error)
        }
        let port = Socket.localAddress(fd)?.port ?? 0
        let done = DispatchSemaphore(value: 0)
        state.withLock {
            $0.listener = fd
            $0.port = port
            $0.stopping = false
            $0.acceptThreadDone = done
        }
        let thread = Thread { [self] in
            acceptLoop(fd)
            done.signal()
        }
        thread.name = "sluice-metrics"
        thread.start()
    }

    /// Stops accepting and closes the listener. Idempotent.
    public func stop() {
        let (listener, done) = state.withLock { state in
            let result = (state.listener, state.acceptThreadDone)
            state.stopping = true
            state.listener = -1
            state.acceptThreadDone = nil
            return result
        }
        guard listener >= 0 else { return }
        done?.wait()
        Posix.close(listener)
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func acceptLoop(_ listener: Int32) {
        while !isStopping {
            guard let fd = slots.acceptBounded(listener, pollMilliseconds: ControlServer.pollMilliseconds,
                                               stopping: { isStopping }) else { continue }
            // Scrapes are short; a thread each keeps a slow scraper from holding up the next.
            let thread = Thread { [self] in
                serve(fd)
                Posix.close(fd)
                slots.release(.request)
            }
            thread.name = "sluice-metrics-conn"
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        ControlSocket.setSendTimeout(fd, seconds: 10)
        var parser = ControlRequestParser()
        let deadline = monotonicNanos() + UInt64(limits.requestTimeoutMilliseconds) * 1_000_000
        let request: HTTPRequest
        switch ControlSocket.readRequest(fd, parser: &parser, deadline: deadline) {
        case .closed, .timedOut, .error:
            return
        case .failure(let error):
            try? ControlSocket.writeAll(fd, ControlRouter.errorResponse(error).serialized(close: true))
            return
        case .request(let r):
            request = r
        }
        let response: HTTPResponse
        if request.path != "/metrics" {
            response = ControlRouter.errorResponse(.notFound("only /metrics is served here"))
        } else if request.method != "GET" && request.method != "HEAD" {
            response = ControlRouter.errorResponse(.methodNotAllowed("use GET"))
        } else {
            response = HTTPResponse(status: 200, contentType: ControlRouter.metricsContentType, body: Array(backend.metrics().utf8))
        }
        var bytes = response.serialized(close: true)
        if request.method == "HEAD" {
            // `bytes` is the head followed by the body, so it holds at least `body.count` bytes.
            bytes.removeLast(response.body.count)
        }
        try? ControlSocket.writeAll(fd, bytes)
        Posix.shutdown(fd, how: Posix.shutdownWrite)
    }

    private func failure(_ operation: String, _ error: Errno) -> ControlServerError {
        ControlServerError(message: "metrics listener \(host):\(requestedPort): \(operation): \(error)")
    }
}
