#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
#if canImport(SluiceCore)
    import SluiceCore
#endif
#if canImport(SluiceHTTP)
    import SluiceHTTP
#endif

/// Why a request to the control socket failed below HTTP: the daemon could not be reached or
/// did not answer properly. See `exitCode`; the message names the socket.
enum ClientError: Error, Equatable, CustomStringConvertible {
    /// `socket`/`connect` failed (missing socket, refused, permission denied, path too long).
    case unreachable(socket: String, reason: String)
    /// The connection failed or timed out after it was made.
    case io(socket: String, reason: String)
    /// The daemon answered with something that is not an HTTP/1.1 response.
    case badResponse(socket: String, reason: String)

    var socket: String {
        switch self {
        case .unreachable(let socket, _), .io(let socket, _), .badResponse(let socket, _): socket
        }
    }

    /// SPEC §7: 3 when the daemon cannot be reached or the connection fails; 1 when it answered, but
    /// not with a usable answer (the CLI must fail with a message, never trap, on any bytes it reads).
    var exitCode: Int32 {
        switch self {
        case .unreachable, .io: ExitStatus.unreachable
        case .badResponse: ExitStatus.refused
        }
    }

    var description: String {
        switch self {
        case .unreachable(let socket, let reason):
            "cannot reach sluiced at \(socket): \(reason) (is sluiced running? --socket or SLUICE_SOCKET name another socket)"
        case .io(let socket, let reason):
            "lost the connection to sluiced at \(socket): \(reason)"
        case .badResponse(let socket, let reason):
            "bad answer from sluiced at \(socket): \(reason)"
        }
    }
}

/// A small blocking HTTP/1.1 client over the daemon's Unix stream socket (SPEC §6).
///
/// One connection per request (`Connection: close`): the CLI makes one request per run, and the
/// daemon is on the same machine. Not for the data path; it blocks the calling thread.
struct ControlClient: Sendable {
    /// Path of the control socket.
    var socketPath: String
    /// Longest wait for the daemon to accept, take, or answer, per read or write; `nil` waits forever
    /// (`deregister --wait`, `events`).
    var timeout: Duration?

    static let defaultTimeout: Duration = .seconds(30)
    /// Largest whole answer `request` collects; the daemon's biggest (every group's targets) is far below.
    static let maxAnswerBytes = 64 * 1024 * 1024
    /// Longest line of a stream `streamLines` holds while waiting for its end.
    static let maxLineBytes = 1024 * 1024

    init(socketPath: String, timeout: Duration? = ControlClient.defaultTimeout) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    /// Sends one request and reads the whole answer. Any status is returned; only failures
    /// below HTTP throw.
    func request(method: String, path: String, body: Data? = nil) throws(ClientError) -> (status: Int, body: Data) {
        let connection = try connect()
        try connection.send(Self.encodeRequest(method: method, path: path, body: body), socket: socketPath)
        var decoder = HTTPResponseDecoder(bodyless: method == "HEAD")
        var status = 0
        var collected = Data()
        try connection.readUntilDone(decoder: &decoder, socket: socketPath) { event throws(ClientError) in
            switch event {
            case .head(let head): status = head.status
            case .body(let bytes):
                guard collected.count + bytes.count <= Self.maxAnswerBytes else {
                    throw .badResponse(socket: socketPath, reason: "the answer is over \(Self.maxAnswerBytes) bytes")
                }
                collected.append(contentsOf: bytes)
            case .end: break
            }
        }
        return (status, collected)
    }

    /// Sends one request whose 2xx answer is a stream of lines (NDJSON) and calls `onLine` with each
    /// line, without its line end, as it arrives, until the daemon ends the stream. A non-2xx answer
    /// is not streamed: its status and whole body are returned instead.
    func streamLines(
        method: String = "GET", path: String, onLine: (Data) -> Void
    ) throws(ClientError) -> (status: Int, body: Data) {
        let connection = try connect()
        try connection.send(Self.encodeRequest(method: method, path: path, body: nil), socket: socketPath)
        var decoder = HTTPResponseDecoder()
        var status = 0
        var streaming = false
        var pending = Data()
        var errorBody = Data()
        try connection.readUntilDone(decoder: &decoder, socket: socketPath) { event throws(ClientError) in
            switch event {
            case .head(let head):
                status = head.status
                streaming = (200..<300).contains(head.status)
            case .body(let bytes):
                guard streaming else {
                    guard errorBody.count + bytes.count <= Self.maxAnswerBytes else {
                        throw .badResponse(socket: socketPath, reason: "the answer is over \(Self.maxAnswerBytes) bytes")
                    }
                    errorBody.append(contentsOf: bytes)
                    return
                }
                pending.append(contentsOf: bytes)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    var line = pending[pending.startIndex..<newline]
                    if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                    if !line.isEmpty { onLine(Data(line)) }
                    pending = Data(pending[(newline + 1)...])
                }
                guard pending.count <= Self.maxLineBytes else {
                    throw .badResponse(socket: socketPath, reason: "a streamed line is over \(Self.maxLineBytes) bytes")
                }
            case .end:
                if streaming && !pending.isEmpty { onLine(pending) }
                pending = Data()
            }
        }
        return (status, streaming ? Data() : errorBody)
    }

    /// The request bytes. `Host` is required by HTTP/1.1; the daemon ignores it.
    static func encodeRequest(method: String, path: String, body: Data?) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: sluiced\r\nUser-Agent: sluicectl\r\n"
        head += "Accept: application/json\r\nConnection: close\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method == "POST" || method == "PUT" || method == "PATCH" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if let body { bytes.append(contentsOf: body) }
        return bytes
    }

    /// Connects to the control socket (a leading `@` names the abstract namespace, as for the daemon).
    private func connect() throws(ClientError) -> Connection {
        let capacity = UnixSocketAddress.pathCapacity
        guard let address = UnixSocketAddress(path: socketPath) else {
            throw .unreachable(socket: socketPath, reason: "the path must be 1 to \(capacity - 1) bytes long")
        }
        let fd: Int32
        do throws(Errno) {
            fd = try Socket.unix()
        } catch {
            throw .unreachable(socket: socketPath, reason: error.description)
        }
        let connection = Connection(fd: fd)  // closes fd on every path from here
        do throws(Errno) {
            if let timeout { try connection.setTimeout(timeout) }
            try Socket.connect(connection.fd, to: address)
        } catch {
            throw .unreachable(socket: socketPath, reason: error.description)
        }
        return connection
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }
}

/// An owned, connected socket; closes in `deinit`.
private struct Connection: ~Copyable {
    let fd: Int32

    init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        Posix.close(fd)
    }

    /// Sets `SO_RCVTIMEO` and `SO_SNDTIMEO` (which also bound a blocking `connect`).
    func setTimeout(_ timeout: Duration) throws(Errno) {
        // Saturating: callers pass at most `--timeout` plus slack; 0 would mean "no timeout".
        let (seconds, attoseconds) = timeout.components
        let (whole, overflow) = UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let nanos = overflow ? UInt64.max : whole.addingReportingOverflow(UInt64(clamping: attoseconds / 1_000_000_000)).partialValue
        let bounded = max(nanos, 1_000)  // at least 1 µs: the kernel counts in microseconds
        try Socket.setTimeout(fd, .receive, nanos: bounded)
        try Socket.setTimeout(fd, .send, nanos: bounded)
    }

    /// Writes all of `bytes` (`MSG_NOSIGNAL`: a daemon that hangs up gives `EPIPE`, not SIGPIPE).
    func send(_ bytes: [UInt8], socket path: String) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw -> Result<IOResult<Int>, Errno> in
                Result { () throws(Errno) in try Posix.send(fd, from: raw.baseAddress! + offset, count: raw.count - offset) }
            }
            switch result {
            case .success(.processed(let n)): offset += n
            case .success(.wouldBlock): throw .io(socket: path, reason: Self.describeIOError(EAGAIN))
            case .failure(let e): throw .io(socket: path, reason: Self.describeIOError(e.code))
            }
        }
    }

    /// Reads and decodes until the response is complete, handing every event to `handle`.
    func readUntilDone(
        decoder: inout HTTPResponseDecoder, socket path: String,
        handle: (HTTPResponseDecoder.Event) throws(ClientError) -> Void
    ) throws(ClientError) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var sawBytes = false
        while !decoder.isComplete {
            let result = buffer.withUnsafeMutableBytes { raw -> Result<IOResult<Int>, Errno> in
                Result { () throws(Errno) in try Posix.read(fd, into: raw.baseAddress!, count: raw.count) }
            }
            let n: Int
            switch result {
            case .success(.processed(let count)): n = count
            case .success(.wouldBlock): throw .io(socket: path, reason: Self.describeIOError(EAGAIN))
            case .failure(let e): throw .io(socket: path, reason: Self.describeIOError(e.code))
            }
            do {
                if n == 0 {
                    guard sawBytes else {
                        throw ClientError.io(socket: path, reason: "the daemon closed the connection without answering")
                    }
                    for event in try decoder.finish() { try handle(event) }
                    return
                }
                sawBytes = true
                for event in try decoder.feed(buffer[..<n]) { try handle(event) }
            } catch let error as ClientError {
                throw error
            } catch HTTPResponseDecoder.DecodeError.truncated {
                throw .io(socket: path, reason: "the daemon closed the connection mid-answer")
            } catch {
                throw .badResponse(socket: path, reason: "\(error)")
            }
        }
    }

    private static func describeIOError(_ code: Int32) -> String {
        if code == EAGAIN || code == EWOULDBLOCK { return "timed out waiting for the daemon" }
        return ControlClient.errnoText(code)
    }
}
