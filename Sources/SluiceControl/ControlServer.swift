#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SluiceCore
import Synchronization

/// Why the control server could not start.
public struct ControlServerError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The control socket: HTTP/1.1 + JSON over a Unix stream socket (SPEC §6).
///
/// Threads: one accept thread, and one thread per connection, at most `limits.maxConnections` for requests
/// plus `limits.maxStreams` for event streams and `deregister --wait` (see `ConnectionLimits` for what
/// happens at those bounds). Backend calls happen on connection threads.
public final class ControlServer: Sendable {
    /// How often blocked loops look at the stop flag and the peer.
    static let pollMilliseconds: Int32 = 250

    public let socketPath: String
    public let limits: ConnectionLimits
    let slots: ConnectionSlots
    private let router: ControlRouter
    private let events: EventBus
    private let allowedGroup: gid_t?
    private let log: @Sendable (String) -> Void

    private struct State {
        var listener: Int32 = -1
        var socketGroup: gid_t?
        var connections: Set<Int32> = []
        var stopping = false
        var acceptThreadDone: DispatchSemaphore?
    }

    private let state = Mutex(State())

    public init(
        socketPath: String, backend: any ControlBackend, events: EventBus, allowedGroup: gid_t? = nil,
        limits: ConnectionLimits = .control, log: @escaping @Sendable (String) -> Void
    ) {
        self.socketPath = socketPath
        self.limits = limits
        self.slots = ConnectionSlots(limits)
        self.router = ControlRouter(backend: backend)
        self.events = events
        self.allowedGroup = allowedGroup
        self.log = log
    }

    /// Creates the directory if missing, replaces a stale socket, binds, sets mode 0660 (and the group when
    /// `allowedGroup` is set), listens, and starts the accept thread.
    public func start() throws(ControlServerError) {
        let directory = (socketPath as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ControlServerError(message: "control socket \(socketPath): cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        try removeStaleSocket()

        guard let address = UnixSocketAddress(path: socketPath) else {
            throw ControlServerError(message: "control socket \(socketPath): path is too long for a Unix socket")
        }
        let fd: Int32
        do throws(Errno) {
            fd = try Socket.unix()
        } catch {
            throw failure("socket", error)
        }
        do throws(Errno) {
            try Socket.bind(fd, to: address)
        } catch {
            Posix.close(fd)
            throw failure("bind", error)
        }
        if let allowedGroup, chown(socketPath, uid_t.max, allowedGroup) != 0 {
            let error = failure("chown to group \(allowedGroup)", .current)
            Posix.close(fd)
            unlink(socketPath)
            throw error
        }
        guard chmod(socketPath, 0o660) == 0 else {
            let error = failure("chmod 0660", .current)
            Posix.close(fd)
            unlink(socketPath)
            throw error
        }
        var info = stat()
        let socketGroup: gid_t? = stat(socketPath, &info) == 0 ? info.st_gid : nil
        do throws(Errno) {
            try Socket.listen(fd, backlog: 64)
        } catch {
            Posix.close(fd)
            unlink(socketPath)
            throw failure("listen", error)
        }
        let done = DispatchSemaphore(value: 0)
        state.withLock {
            $0.listener = fd
            $0.socketGroup = socketGroup
            $0.stopping = false
            $0.acceptThreadDone = done
        }
        let thread = Thread { [self] in
            acceptLoop(fd)
            done.signal()
        }
        thread.name = "sluice-control"
        thread.start()
    }

    /// Stops accepting, closes the listener, unlinks the socket, and shuts down open connections (their
    /// threads finish on their own). Idempotent.
    public func stop() {
        let (listener, done) = state.withLock { state in
            let result = (state.listener, state.acceptThreadDone)
            state.stopping = true
            state.listener = -1
            state.acceptThreadDone = nil
            for fd in state.connections { Posix.shutdown(fd, how: Posix.shutdownBoth) }
            return result
        }
        guard listener >= 0 else { return }
        done?.wait()
        Posix.close(listener)
        unlink(socketPath)
    }

    // MARK: Accepting

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func acceptLoop(_ listener: Int32) {
        while !isStopping {
            guard let fd = slots.acceptBounded(listener, pollMilliseconds: Self.pollMilliseconds,
                                               stopping: { isStopping }) else { continue }
            let admitted = state.withLock { state -> Bool in
                guard !state.stopping else { return false }
                state.connections.insert(fd)
                return true
            }
            guard admitted else {
                slots.release(.request)
                Posix.close(fd)
                break
            }
            let thread = Thread { [self] in
                let held = serve(fd)
                state.withLock { state in
                    state.connections.remove(fd)
                    Posix.close(fd)
                }
                slots.release(held)
            }
            thread.name = "sluice-control-conn"
            thread.start()
        }
    }

    // MARK: One connection

    /// Serves one connection; returns the kind of slot it holds at the end (a stream once promoted).
    private func serve(_ fd: Int32) -> ConnectionSlots.Kind {
        guard authorize(fd) else {
            let denied = ControlRouter.errorResponse(.forbidden("permission denied: not root, not the daemon's user, and not in the control socket's group"))
            try? ControlSocket.writeAll(fd, denied.serialized(close: true))
            return .request
        }
        ControlSocket.setSendTimeout(fd, seconds: 30)
        let timeoutNanos = UInt64(limits.requestTimeoutMilliseconds) * 1_000_000
        var parser = ControlRequestParser()
        do throws(ControlSocketError) {
            while true {
                // A whole request within the timeout of starting to wait for it (idle keep-alive included).
                let request: HTTPRequest
                switch ControlSocket.readRequest(fd, parser: &parser, deadline: monotonicNanos() + timeoutNanos) {
                case .request(let r):
                    request = r
                case .failure(let error):
                    try ControlSocket.writeAll(fd, ControlRouter.errorResponse(error).serialized(close: true))
                    return .request
                case .closed, .timedOut:
                    return .request
                case .error(let error):
                    throw error
                }
                if ControlRouter.isLongLived(request) {
                    guard slots.promoteToStream() else {
                        let busy = ControlError(
                            status: 503, code: "busy",
                            message: "too many event streams and deregister --wait requests at once (\(limits.maxStreams)); try again later")
                        try ControlSocket.writeAll(fd, ControlRouter.errorResponse(busy).serialized(close: true))
                        return .request
                    }
                    do throws(ControlSocketError) {
                        switch router.route(request) {
                        case .respond(let response):
                            // Back to a request slot to keep the connection alive; closed when none is free.
                            let keepAlive = request.keepAlive && !isStopping && slots.demoteToRequest()
                            try ControlSocket.writeAll(fd, response.serialized(close: !keepAlive))
                            if keepAlive { continue }
                        case .events(let group):
                            try streamEvents(fd, group: group)
                        }
                    } catch {
                        logUnexpected(error)
                    }
                    return .stream
                }
                switch router.route(request) {
                case .respond(let response):
                    let keepAlive = request.keepAlive && !isStopping
                    try ControlSocket.writeAll(fd, response.serialized(close: !keepAlive))
                    if !keepAlive { return .request }
                case .events(let group):
                    // Not reached: `isLongLived` covers every `.events` outcome. Served anyway, without a slot
                    // change, rather than trapping.
                    try streamEvents(fd, group: group)
                    return .request
                }
            }
        } catch {
            logUnexpected(error)
            return .request
        }
    }

    /// Logs a connection's socket error unless it is the peer leaving or timing out.
    private func logUnexpected(_ error: ControlSocketError) {
        if error.errno != EAGAIN && error.errno != EWOULDBLOCK && error.errno != EPIPE && error.errno != ECONNRESET {
            log("control connection: \(error)")
        }
    }

    private func authorize(_ fd: Int32) -> Bool {
        guard let peer = ControlSocket.peerCredentials(fd) else {
            log("control connection refused: SO_PEERCRED failed: \(String(cString: strerror(errno)))")
            return false
        }
        let socketGroup = state.withLock { $0.socketGroup }
        let ours = geteuid()
        // Root and our own user pass without reading /proc.
        if peer.uid == 0 || peer.uid == ours { return true }
        let groups = [peer.gid] + PeerCredentials.supplementaryGroups(pid: peer.pid)
        let allowed = PeerCredentials.isAllowed(
            peerUID: peer.uid, peerGroups: groups, ourEUID: ours, socketGroup: socketGroup, allowedGroup: allowedGroup)
        if !allowed { log("control connection refused: uid \(peer.uid) gid \(peer.gid) pid \(peer.pid)") }
        return allowed
    }

    /// `GET /v1/events`: chunked NDJSON until the peer leaves or the server stops.
    private func streamEvents(_ fd: Int32, group: String?) throws(ControlSocketError) {
        // Subscribe before the head goes out, so nothing published after the client sees 200 is missed.
        let subscription = events.subscribe()
        defer { events.unsubscribe(subscription) }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
            + "Cache-Control: no-cache\r\n\r\n"
        try ControlSocket.writeAll(fd, Array(head.utf8))
        while !isStopping {
            if let event = subscription.next(timeout: Double(Self.pollMilliseconds) / 1000) {
                if let group, event.group != group { continue }
                let line = ControlRouter.eventLine(event)
                try ControlSocket.writeAll(fd, Array(String(line.count, radix: 16).utf8) + [13, 10] + line + [13, 10])
            } else if ControlSocket.peerClosed(fd) {
                return
            }
        }
        try? ControlSocket.writeAll(fd, Array("0\r\n\r\n".utf8))
    }

    // MARK: Helpers

    private func failure(_ operation: String, _ error: Errno) -> ControlServerError {
        ControlServerError(message: "control socket \(socketPath): \(operation): \(error)")
    }

    /// Removes a socket left by a previous run. A live socket (something accepts) or a non-socket file at the
    /// path is an error, never deleted.
    private func removeStaleSocket() throws(ControlServerError) {
        var info = stat()
        guard lstat(socketPath, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlServerError(message: "control socket \(socketPath): exists and is not a socket")
        }
        if let address = UnixSocketAddress(path: socketPath), let probe = try? Socket.unix() {
            let connected = (try? Socket.connect(probe, to: address)) != nil
            Posix.close(probe)
            if connected {
                throw ControlServerError(message: "control socket \(socketPath): another process is listening on it")
            }
        }
        unlink(socketPath)
    }
}
