import Foundation
import SluiceCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The certificates of Tests/Fixtures/make_certs.sh, made once per test process.
enum TLSFixtures {
    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    static let directory: Result<String, Missing> = {
        // As in sluiced: a write to a socket whose peer is gone is EPIPE, not a fatal signal.
        // OpenSSL writes alerts with write(2), e.g. after reading an unexpected EOF.
        signal(SIGPIPE, SIG_IGN)
        let dir = NSTemporaryDirectory() + "sluice-tls-fixtures-\(getpid())"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/make_certs.sh").path
        do {
            let status = try run("/bin/sh", [script, dir])
            return status == 0 ? .success(dir) : .failure(Missing(description: "make_certs.sh exited \(status)"))
        } catch {
            return .failure(Missing(description: "make_certs.sh: \(error)"))
        }
    }()

    /// The path of a fixture file, e.g. `path("a.pem")`.
    static func path(_ name: String) throws -> String {
        try directory.get() + "/" + name
    }

    static func files(_ name: String) throws -> TLSCertificateFiles {
        TLSCertificateFiles(cert: try path(name + ".pem"), key: try path(name + ".key"))
    }

    /// Runs a program to its end (stdout to `output` when given); its exit status.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], output: String? = nil) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        p.standardInput = FileHandle.nullDevice
        if let output {
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: output)
        }
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}

/// A server context over the fixtures, defaults as a listener would have them.
func makeServer(_ certs: [String] = ["a", "b"], minVersion: TLSVersion = .v1_2, alpn: [String] = [],
                clientAuth: (mode: TLSClientAuthMode, caFile: String?)? = nil,
                ticketKeys: TLSTicketKeys = .shared) throws -> TLSServerContext {
    try TLSServerContext(TLSServerSettings(certificates: certs.map(TLSFixtures.files), minVersion: minVersion,
                                           alpn: alpn, clientAuth: clientAuth, ticketKeys: ticketKeys))
}

/// A client context that does not verify unless told to.
func makeClient(verify: Bool = false, caFile: String? = nil, alpn: [String] = [], certificate: String? = nil,
                maxVersion: TLSVersion = .v1_3) throws -> TLSClientContext {
    try TLSClientContext(verify: verify, caFile: caFile, alpn: alpn, certificate: certificate.map(TLSFixtures.files),
                         maxVersion: maxVersion)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension TLSHandshakeStep {
    var isFinal: Bool {
        switch self {
        case .done, .failed: true
        case .wantsRead, .wantsWrite: false
        }
    }

    var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }

    var pollEvents: Int16 {
        self == .wantsWrite ? Int16(POLLOUT) : Int16(POLLIN)
    }
}

/// A connected, nonblocking `socketpair(AF_UNIX, SOCK_STREAM)`; closes both ends in deinit.
final class SocketPair {
    let server: Int32
    let client: Int32
    private var closed: [Bool] = [false, false]

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                         0, &fds) == 0 else { throw Errno.current }
        server = fds[0]
        client = fds[1]
    }

    func closeClient() {
        if !closed[1] { closed[1] = true; Glibc.close(client) }
    }

    func closeServer() {
        if !closed[0] { closed[0] = true; Glibc.close(server) }
    }

    deinit {
        closeServer()
        closeClient()
    }
}

/// A server and a client `TLSStream` over one socket pair, driven from one thread.
final class TLSPair {
    let sockets: SocketPair
    let server: TLSStream
    let client: TLSStream

    init(_ serverContext: TLSServerContext, _ clientContext: TLSClientContext, serverName: String?,
         session: TLSSession? = nil) throws {
        sockets = try SocketPair()
        guard let s = serverContext.makeStream(fd: sockets.server),
              let c = clientContext.makeStream(fd: sockets.client, serverName: serverName, session: session)
        else { throw TestFailure("makeStream returned nil") }
        server = s
        client = c
    }

    /// Alternates the two handshakes, waiting with poll for what each asked, until both are
    /// done or failed; after one side fails the other gets a few rounds to read the alert.
    func handshake(timeoutSeconds: Double = 10) -> (server: TLSHandshakeStep, client: TLSHandshakeStep) {
        var s = TLSHandshakeStep.wantsRead
        var c = TLSHandshakeStep.wantsWrite
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var roundsAfterFailure = 0
        while !(s.isFinal && c.isFinal) && Date() < deadline {
            if !c.isFinal { c = client.handshake() }
            if !s.isFinal { s = server.handshake() }
            if s.isFinal && c.isFinal { break }
            if s.isFailure || c.isFailure {
                roundsAfterFailure += 1
                if roundsAfterFailure > 10 { break }
            }
            var fds = [pollfd(fd: sockets.server, events: s.isFinal ? 0 : s.pollEvents, revents: 0),
                       pollfd(fd: sockets.client, events: c.isFinal ? 0 : c.pollEvents, revents: 0)]
            _ = poll(&fds, 2, 20)
        }
        return (s, c)
    }

    /// Moves `bytes` from `writer` to `reader` (either direction), alternating writes and reads;
    /// returns what arrived and how many writes moved fewer bytes than offered.
    func transfer(_ bytes: [UInt8], from writer: TLSStream, to reader: TLSStream,
                  chunk: Int = 1 << 20, timeoutSeconds: Double = 20) -> (received: [UInt8], partialWrites: Int, end: TransportResult?) {
        var written = 0
        var partial = 0
        var received: [UInt8] = []
        received.reserveCapacity(bytes.count)
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var end: TransportResult?
        while received.count < bytes.count && Date() < deadline {
            var progressed = false
            if written < bytes.count {
                let offered = min(chunk, bytes.count - written)
                let r = bytes.withUnsafeBytes { raw in
                    writer.write(from: raw.baseAddress!.advanced(by: written), count: offered)
                }
                switch r {
                case .bytes(let n):
                    if n < offered { partial += 1 }
                    written += n
                    progressed = true
                case .wouldBlock, .wantsRead, .wantsWrite, .drained:
                    break
                case .closed, .failed:
                    return (received, partial, r)
                }
            }
            readLoop: while true {
                let r = buffer.withUnsafeMutableBytes { reader.read(into: $0.baseAddress!, count: $0.count) }
                switch r {
                case .bytes(let n), .drained(let n):
                    received += buffer[0..<n]
                    progressed = true
                case .wouldBlock, .wantsRead, .wantsWrite:
                    break readLoop
                case .closed, .failed:
                    end = r
                    return (received, partial, end)
                }
            }
            if !progressed {
                var fds = [pollfd(fd: sockets.server, events: Int16(POLLIN | POLLOUT), revents: 0),
                           pollfd(fd: sockets.client, events: Int16(POLLIN | POLLOUT), revents: 0)]
                _ = poll(&fds, 2, 20)
            }
        }
        return (received, partial, end)
    }

    /// Reads from `reader` until it reports something other than bytes or would-block (or time runs out).
    func readToEnd(_ reader: TLSStream, timeoutSeconds: Double = 5) -> (bytes: [UInt8], end: TransportResult?) {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            let r = buffer.withUnsafeMutableBytes { reader.read(into: $0.baseAddress!, count: $0.count) }
            switch r {
            case .bytes(let n), .drained(let n):
                out += buffer[0..<n]
            case .wouldBlock, .wantsRead, .wantsWrite:
                var fds = [pollfd(fd: reader === server ? sockets.server : sockets.client, events: Int16(POLLIN), revents: 0)]
                _ = poll(&fds, 1, 20)
            case .closed, .failed:
                return (out, r)
            }
        }
        return (out, nil)
    }

    /// Sends a few bytes server → client and reads them, so a TLS 1.3 client has processed the
    /// session tickets that come before them.
    func exchangeGreeting() -> Bool {
        let hello = Array("hello".utf8)
        return transfer(hello, from: server, to: client).received == hello
    }
}

/// Decodes RFC 3986 percent-encoding (test side, independent of the code under test).
func percentDecoded(_ text: String) -> [UInt8]? {
    var out: [UInt8] = []
    var bytes = Array(text.utf8)[...]
    while let b = bytes.popFirst() {
        if b == UInt8(ascii: "%") {
            guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
            bytes = bytes.dropFirst(2)
        } else {
            out.append(b)
        }
    }
    return out
}

/// Listens on loopback, runs `openssl s_client` against it, and serves it one TLS
/// connection: handshake, a greeting, close_notify. The server stream's view of it.
func serveOneOpenSSLClient(_ context: TLSServerContext, arguments: [String],
                           output: String) throws -> (step: TLSHandshakeStep, stream: TLSStream) {
    guard let any = SocketAddress(host: "127.0.0.1", port: 0) else { throw TestFailure("address") }
    let listener = try Socket.listen(on: any, reusePort: false)
    defer { Posix.close(listener) }
    guard let port = Socket.localAddress(listener)?.port else { throw TestFailure("no port") }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "a.example", "-ign_eof",
                         "-alpn", "h2"] + arguments
    process.standardInput = FileHandle.nullDevice
    _ = FileManager.default.createFile(atPath: output, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: output)
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer {
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    var fd: Int32 = -1
    let deadline = Date().addingTimeInterval(10)
    while fd < 0 && Date() < deadline {
        var peer = SocketAddress()
        if case .processed(let accepted) = try Posix.accept(listener, address: &peer) {
            fd = accepted
        } else {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
        }
    }
    guard fd >= 0 else { throw TestFailure("openssl s_client did not connect") }
    defer { Posix.close(fd) }
    guard let stream = context.makeStream(fd: fd) else { throw TestFailure("no stream") }
    var step = stream.handshake()
    while !step.isFinal && Date() < deadline {
        var p = pollfd(fd: fd, events: step.pollEvents, revents: 0)
        _ = poll(&p, 1, 50)
        step = stream.handshake()
    }
    guard step == .done else { return (step, stream) }
    #expect(stream.alpn == .h2)
    let greeting = Array("hello from sluice\n".utf8)
    var sent = 0
    while sent < greeting.count && Date() < deadline {
        let r = greeting.withUnsafeBytes { stream.write(from: $0.baseAddress! + sent, count: $0.count - sent) }
        switch r {
        case .bytes(let n): sent += n
        case .failed, .closed: throw TestFailure("write: \(r)")
        default:
            var p = pollfd(fd: fd, events: Int16(POLLOUT | POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
        }
    }
    stream.shutdown()
    // Wait for the client to go (it exits on close_notify), so its session file is complete.
    var buffer = [UInt8](repeating: 0, count: 4096)
    while Date() < deadline {
        let r = buffer.withUnsafeMutableBytes { stream.read(into: $0.baseAddress!, count: $0.count) }
        if r == .closed { break }
        if case .failed = r { break }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, 50)
    }
    return (step, stream)
}
