import SluiceCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

// TLSStream's drained answers: a read that fetched everything the socket held answers
// `.drained`, so the worker skips the read that would only return EAGAIN; nothing may be
// answered drained while OpenSSL still holds bytes no new epoll edge would announce.
//
// The server stream runs on an accepted TCP socket (TCP_INQ is what proves "drained"); the
// client stream runs on a socketpair whose other end the test relays to the server by hand, so
// it can hold back or split the ciphertext. `EdgeReader` reads the server side like a worker:
// edge-triggered epoll, `Readiness`, reading only while `readable` — a wrong `.drained` stalls it.

/// A self-signed ECDSA P-256 certificate (CN sluice-unit-test, valid until 2126) and its key.
enum UnitTestCertificate {
    static let pem = """
        -----BEGIN CERTIFICATE-----
        MIIBqTCCAU+gAwIBAgIUL/Pha0WWJZYtxQcnakyu3FSKj9QwCgYIKoZIzj0EAwIw
        GzEZMBcGA1UEAwwQc2x1aWNlLXVuaXQtdGVzdDAgFw0yNjEyMDcwNzMzMDdaGA8y
        MTI2MTExMzA3MzMwN1owGzEZMBcGA1UEAwwQc2x1aWNlLXVuaXQtdGVzdDBZMBMG
        ByqGSM49AgEGCCqGSM49AwEHA0IABE8FKbpnoFoyldxaDGaP04DWr71P5UQeRKIF
        L5Xot7VA50tjDMdZF1+S8DSnfkZV5vlZrPSPafJvHv3ldouLjQqjbzBtMB0GA1Ud
        DgQWBBTBN4B+OK/pO2Idpq35R2ANTFSfGDAfBgNVHSMEGDAWgBTBN4B+OK/pO2Id
        pq35R2ANTFSfGDAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9z
        dIcEfwAAATAKBggqhkjOPQQDAgNIADBFAiEAnuAYQ6c9OSC9f77OurRn5mQ2R7AJ
        KQblWROuFH+K1pQCIBZ0KdQA8GHkugwB3s5vAnDinlHkyhhgUXJX/JyKjdza
        -----END CERTIFICATE-----

        """
    static let key = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgx8UoFfs65LwO4fec
        nfPcyO6x4nVKON2sbTh6bUhWpdShRANCAARPBSm6Z6BaMpXcWgxmj9OA1q+9T+VE
        HkSiBS+V6Le1QOdLYwzHWRdfkvA0p35GVeb5Waz0j2nybx795XaLi40K
        -----END PRIVATE KEY-----

        """

    /// Both written once per process into a fresh directory under /tmp.
    static let files: TLSCertificateFiles? = {
        var template = Array("/tmp/sluice-tls-unit.XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { return nil }
        let base = String(cString: dir)
        guard write(pem, to: base + "/cert.pem"), write(key, to: base + "/key.pem") else { return nil }
        return TLSCertificateFiles(cert: base + "/cert.pem", key: base + "/key.pem")
    }()

    private static func write(_ text: String, to path: String) -> Bool {
        guard let f = fopen(path, "w") else { return false }
        defer { fclose(f) }
        return fputs(text, f) >= 0
    }
}

func waitReadable(_ fd: Int32, ms: Int32) {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    _ = poll(&p, 1, ms)
}

func setNonblocking(_ fd: Int32) {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
}

/// A TLS server stream on a socket and a TLS client stream on a socketpair, with the test
/// relaying the client's ciphertext to the server's socket (`wire`) and back; or (`relayed`
/// false) the client stream right on `wire`.
final class TLSStreamPair {
    let server: TLSStream
    let client: TLSStream
    /// The server's socket (accepted TCP, or one end of a socketpair).
    let serverFd: Int32
    /// The peer of `serverFd`: what the relay writes the client's bytes into.
    let wire: Int32
    /// Under the client stream (`wire` when not relayed).
    let clientFd: Int32
    /// The peer of `clientFd`: the client's ciphertext comes out here (-1 when not relayed).
    let relay: Int32
    private var toServer: [UInt8] = []
    private var toClient: [UInt8] = []
    private let serverContext: TLSServerContext
    private let clientContext: TLSClientContext

    init(serverOverTCP: Bool = true, relayed: Bool = true, maxVersion: TLSVersion = .v1_3) throws {
        let files = try #require(UnitTestCertificate.files)
        serverContext = try TLSServerContext(TLSServerSettings(certificates: [files]))
        clientContext = try TLSClientContext(verify: false, caFile: nil, alpn: [], maxVersion: maxVersion)
        if serverOverTCP {
            let listener = try Socket.listen(on: try #require(SocketAddress(host: "127.0.0.1", port: 0)), reusePort: false,
                                             backlog: 4)
            defer { Posix.close(listener) }
            let address = try #require(Socket.localAddress(listener))
            wire = try Socket.tcp(for: address)
            _ = try Socket.connect(wire, to: address)
            waitReadable(listener, ms: 2000)
            var peer = SocketAddress()
            guard case .processed(let fd) = try Posix.accept(listener, address: &peer) else {
                throw Errno(EAGAIN)
            }
            serverFd = fd
            Socket.setNoDelay(wire)  // the relay's small writes go out one by one
        } else {
            var fds: [Int32] = [-1, -1]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            serverFd = fds[0]
            wire = fds[1]
        }
        if relayed {
            var fds: [Int32] = [-1, -1]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            clientFd = fds[0]
            relay = fds[1]
            setNonblocking(clientFd)
            setNonblocking(relay)
        } else {
            clientFd = wire
            relay = -1
        }
        setNonblocking(serverFd)
        setNonblocking(wire)
        server = try #require(serverContext.makeStream(fd: serverFd))
        client = try #require(clientContext.makeStream(fd: clientFd, serverName: "localhost"))
        try handshake()
    }

    deinit {
        Posix.close(serverFd)
        Posix.close(wire)
        if relay >= 0 {
            Posix.close(clientFd)
            Posix.close(relay)
        }
    }

    private func handshake() throws {
        var clientDone = false, serverDone = false
        for _ in 0..<2000 where !(clientDone && serverDone) {
            if !clientDone {
                switch client.handshake() {
                case .done: clientDone = true
                case .wantsRead, .wantsWrite: break
                case .failed(let f): throw TLSSetupError(file: nil, message: "client handshake: \(f)")
                }
            }
            pump()
            if !serverDone {
                switch server.handshake() {
                case .done: serverDone = true
                case .wantsRead, .wantsWrite: break
                case .failed(let f): throw TLSSetupError(file: nil, message: "server handshake: \(f) \(server.failureDetail)")
                }
            }
            pump()
            if !(clientDone && serverDone) { usleep(200) }
        }
        #expect(clientDone && serverDone)
    }

    /// Moves whatever is waiting in both directions (client → server fully, as far as the
    /// server's socket takes it).
    func pump() {
        guard relay >= 0 else { return }
        toServer += takeFromClient()
        let sent = send(toServer[...], to: wire)
        toServer.removeFirst(sent)
        toClient += take(from: wire)
        let back = send(toClient[...], to: relay)
        toClient.removeFirst(back)
    }

    /// The client's ciphertext waiting at `relay` (not forwarded).
    func takeFromClient() -> [UInt8] { take(from: relay) }

    /// Writes `bytes` into the server's socket; the count written.
    @discardableResult
    func sendToServer(_ bytes: ArraySlice<UInt8>) -> Int { send(bytes, to: wire) }

    private func take(from fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return out }
            out += chunk[0..<n]
        }
    }

    private func send(_ bytes: ArraySlice<UInt8>, to fd: Int32) -> Int {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` through the client stream (small amounts: one write each record).
    func clientWrite(_ bytes: [UInt8]) {
        let r = bytes.withUnsafeBytes { client.write(from: $0.baseAddress!, count: $0.count) }
        #expect(r == .bytes(bytes.count))
    }

    /// Waits until the server's socket is readable (or `ms` passed).
    func waitServerReadable(ms: Int32 = 2000) {
        waitReadable(serverFd, ms: ms)
    }
}

/// Reads a TLS stream the way a worker does: edge-triggered epoll events set `readable`, reads go
/// on while it is set, and `Readiness` clears it on `.drained`/`.wouldBlock`.
final class EdgeReader {
    let epoll: Epoll
    let stream: TLSStream
    let fd: Int32
    var io = Readiness()
    var received: [UInt8] = []
    var closed = false
    var failed = false
    /// Read calls, and those that moved nothing (the reads `.drained` saves).
    var reads = 0
    var emptyReads = 0
    private var buffer = [UInt8](repeating: 0, count: 16384)

    init(_ stream: TLSStream, fd: Int32) throws {
        self.stream = stream
        self.fd = fd
        epoll = try Epoll(capacity: 8)
        try epoll.add(fd, events: [.readable, .readHangup, .edgeTriggered], data: 1)
        io.readable = true  // as after a handshake: OpenSSL may hold bytes already
    }

    /// Takes the events that came within `ms`, then reads while readable. Whether an event came.
    @discardableResult
    func step(ms: Int32 = 0) -> Bool {
        let n = epoll.wait(timeoutMillis: ms)
        for i in 0..<n { io.note(epoll.event(at: i).events) }
        drain()
        return n > 0
    }

    /// Reads while `readable`.
    func drain() {
        while io.readable && !closed {
            reads += 1
            let step = buffer.withUnsafeMutableBytes { io.read(.tls(stream), fd, into: $0.baseAddress!, count: $0.count) }
            switch step {
            case .moved(let k): received += buffer[0..<k]
            case .wait: emptyReads += 1
            case .closed: closed = true
            case .failed:
                failed = true
                closed = true
            }
        }
    }

    /// Steps until `done` holds, for at most `seconds`.
    func run(seconds: Int = 10, until done: () -> Bool) {
        var tries = seconds * 100
        while !done() && tries > 0 {
            step(ms: 10)
            tries -= 1
        }
    }
}

func pattern(_ count: Int, seed: UInt32 = 7) -> [UInt8] {
    var x = seed
    return (0..<count).map { _ in
        x = x &* 1_103_515_245 &+ 12345
        return UInt8(truncatingIfNeeded: x >> 16)
    }
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct TLSStreamDrainTests {
    @Test(arguments: [TLSVersion.v1_3, .v1_2])
    func aReadOfEverythingAvailableAnswersDrained(version: TLSVersion) throws {
        let pair = try TLSStreamPair(maxVersion: version)
        var buffer = [UInt8](repeating: 0, count: 65536)
        func serverRead() -> TransportResult {
            buffer.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: $0.count) }
        }
        // One record.
        pair.clientWrite(Array("hello".utf8))
        pair.pump()
        pair.waitServerReadable()
        #expect(serverRead() == .drained(5))
        #expect(buffer[0..<5] == Array("hello".utf8)[...])
        #expect(serverRead() == .wouldBlock)
        // Three records fetched by one socket read: all of them in one answer.
        pair.clientWrite(Array("one,".utf8))
        pair.clientWrite(Array("two,".utf8))
        pair.clientWrite(Array("three".utf8))
        pair.pump()
        pair.waitServerReadable()
        #expect(serverRead() == .drained(13))
        #expect(buffer[0..<13] == Array("one,two,three".utf8)[...])
        #expect(serverRead() == .wouldBlock)
    }

    @Test func theEdgeDrivenReaderNeedsOneReadPerMessage() throws {
        let pair = try TLSStreamPair()
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()  // the handshake's leftovers: nothing
        for i in 0..<20 {
            let message = Array("request \(i)\r\n".utf8)
            pair.clientWrite(message)
            pair.pump()
            let before = (reader.reads, reader.emptyReads, reader.received.count)
            reader.run { reader.received.count == before.2 + message.count }
            #expect(reader.received.suffix(message.count) == message[...])
            // One read moved the message and proved the socket drained: no read for EAGAIN.
            #expect(reader.reads == before.0 + 1)
            #expect(reader.emptyReads == before.1)
            #expect(!reader.io.readable)
        }
    }

    @Test func recordsFetchedTogetherAreAllDeliveredWithoutAnotherEdge() throws {
        // More records than the reader's buffer takes, all in one socket read, then silence:
        // OpenSSL holds whole records no edge will announce, so nothing may answer drained early.
        let pair = try TLSStreamPair()
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()
        let records = (0..<5).map { pattern(5000, seed: UInt32($0) + 10) }
        for r in records { pair.clientWrite(r) }
        pair.pump()
        reader.run(seconds: 3) { reader.received.count >= 25000 }
        #expect(reader.received == Array(records.joined()))
        #expect(!reader.io.readable)
    }

    @Test func aDrainedAnswerNeverCoversBytesThatCameAfterTheSocketRead() throws {
        // A read that proved the socket empty but filled the caller's buffer answers `.bytes`;
        // bytes arriving after it (their edge taken by the worker meanwhile) must still be read
        // before any `.drained`.
        let pair = try TLSStreamPair()
        let early = (0..<3).map { pattern(5000, seed: UInt32($0) + 20) }
        for r in early { pair.clientWrite(r) }
        pair.pump()
        pair.waitServerReadable()
        var buffer = [UInt8](repeating: 0, count: 65536)
        let first = buffer.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: 8000) }
        #expect(first == .bytes(8000))
        var got = Array(buffer[0..<8000])
        let late = Array("late".utf8)
        pair.clientWrite(late)
        pair.pump()
        pair.waitServerReadable()
        for _ in 0..<10 {
            let r = buffer.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: $0.count) }
            guard case .bytes(let n) = r else {
                if case .drained(let n) = r { got += buffer[0..<n] }
                break
            }
            got += buffer[0..<n]
        }
        #expect(got == Array(early.joined()) + late)
    }

    @Test func aRecordSplitAcrossTwoWritesIsNotReportedDrainedEarly() throws {
        let pair = try TLSStreamPair()
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()
        let first = Array("first record".utf8), second = pattern(3000)
        pair.clientWrite(first)
        pair.clientWrite(second)
        let wire = pair.takeFromClient()
        let cut = wire.count - 1000  // inside the second record
        // The first record and the start of the second: the first arrives, the socket is
        // drained, the start of the second waits in OpenSSL.
        pair.sendToServer(wire[..<cut])
        reader.run { reader.received.count >= first.count }
        #expect(reader.received == first)
        #expect(!reader.io.readable)
        // The rest brings a new edge and the whole second record.
        pair.sendToServer(wire[cut...])
        reader.run { reader.received.count >= first.count + second.count }
        #expect(reader.received == first + second)
        #expect(!reader.closed && !reader.failed)
    }

    @Test func aRecordSentByteByByteArrivesWhole() throws {
        let pair = try TLSStreamPair()
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()
        let message = Array("split into single bytes".utf8)
        pair.clientWrite(message)
        let wire = pair.takeFromClient()
        for i in wire.indices {
            // Before its last byte, no part of the record is delivered: each byte is one edge.
            #expect(reader.received.isEmpty)
            pair.sendToServer(wire[i...i])
            reader.step(ms: i == wire.count - 1 ? 1000 : 200)
        }
        reader.run { reader.received.count >= message.count }
        #expect(reader.received == message)
    }

    @Test(arguments: [TLSVersion.v1_3, .v1_2])
    func oneMebibyteArrivesIntact(version: TLSVersion) throws {
        let pair = try TLSStreamPair(maxVersion: version)
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        let data = pattern(1 << 20, seed: 99)
        var sent = 0
        var idle = 0  // rounds without progress
        while reader.received.count < data.count && idle < 5000 {
            let before = (sent, reader.received.count)
            while sent < data.count {
                let r = data.withUnsafeBytes {
                    pair.client.write(from: $0.baseAddress! + sent, count: min(32768, data.count - sent))
                }
                guard case .bytes(let n) = r else { break }
                sent += n
            }
            pair.pump()
            reader.step(ms: 1)
            idle = (sent, reader.received.count) == before ? idle + 1 : 0
        }
        #expect(reader.received.count == data.count)
        #expect(reader.received == data)
        #expect(!reader.closed && !reader.failed)
    }

    @Test func closeNotifyStillCloses() throws {
        // Data, close_notify and the FIN all waiting before the server reads.
        let pair = try TLSStreamPair()
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()
        pair.clientWrite(Array("last words".utf8))
        pair.client.shutdown()
        pair.pump()
        Posix.shutdown(pair.wire, how: Posix.shutdownWrite)
        reader.run { reader.closed }
        #expect(reader.received == Array("last words".utf8))
        #expect(reader.closed && !reader.failed)

        // close_notify after the data was read and answered drained: a new edge.
        let later = try TLSStreamPair()
        let r2 = try EdgeReader(later.server, fd: later.serverFd)
        later.clientWrite(Array("data".utf8))
        later.pump()
        r2.run { r2.received.count >= 4 }
        #expect(!r2.io.readable && !r2.closed)
        later.client.shutdown()
        later.pump()
        r2.run { r2.closed }
        #expect(r2.closed && !r2.failed)
    }

    @Test func anEOFWithoutCloseNotifyStillCloses() throws {
        // Data and the FIN together: the FIN queued behind the data must not be missed (the
        // event that announced both has been taken; no further edge comes).
        let pair = try TLSStreamPair()
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()
        pair.clientWrite(Array("truncated".utf8))
        pair.pump()
        Posix.shutdown(pair.wire, how: Posix.shutdownWrite)
        pair.waitServerReadable()
        reader.run { reader.closed }
        #expect(reader.received == Array("truncated".utf8))
        #expect(reader.closed)

        // The FIN alone, after the data was answered drained.
        let later = try TLSStreamPair()
        let r2 = try EdgeReader(later.server, fd: later.serverFd)
        later.clientWrite(Array("data".utf8))
        later.pump()
        r2.run { r2.received.count >= 4 }
        #expect(!r2.io.readable && !r2.closed)
        Posix.shutdown(later.wire, how: Posix.shutdownWrite)
        r2.run { r2.closed }
        #expect(r2.closed)
    }

    @Test func aSmallBufferIsNeverAnsweredDrainedWhilePlaintextWaits() throws {
        let pair = try TLSStreamPair()
        let message = pattern(100, seed: 3)
        pair.clientWrite(message)
        pair.pump()
        pair.waitServerReadable()
        var got: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 10)
        for _ in 0..<9 {
            let r = chunk.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: $0.count) }
            #expect(r == .bytes(10))
            got += chunk
        }
        let last = chunk.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: $0.count) }
        #expect(last == .bytes(10) || last == .drained(10))
        got += chunk
        #expect(got == message)
        let after = chunk.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: $0.count) }
        #expect(after == .wouldBlock)
    }

    @Test func aSocketThatIsNotTCPIsNeverAnsweredDrained() throws {
        // No TCP_INQ on a socketpair: the reader goes on until EAGAIN, as before.
        let pair = try TLSStreamPair(serverOverTCP: false)
        let reader = try EdgeReader(pair.server, fd: pair.serverFd)
        reader.step()
        pair.clientWrite(Array("hello".utf8))
        pair.pump()
        let before = (reader.reads, reader.emptyReads)
        reader.run { reader.received.count >= 5 }
        #expect(reader.received == Array("hello".utf8))
        #expect(reader.reads == before.0 + 2 && reader.emptyReads == before.1 + 1)
        pair.client.shutdown()
        pair.pump()
        Posix.shutdown(pair.wire, how: Posix.shutdownWrite)
        reader.run { reader.closed }
        #expect(reader.closed && !reader.failed)
    }

    @Test func theClientSideAnswersDrainedToo() throws {
        // Streams towards targets use the same BIO: their reads over TCP answer drained too.
        let pair = try TLSStreamPair(relayed: false)
        let request = Array("ping".utf8)
        pair.clientWrite(request)
        pair.pump()
        pair.waitServerReadable()
        var buffer = [UInt8](repeating: 0, count: 4096)
        #expect(buffer.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: $0.count) } == .drained(4))
        let reply = pattern(2000)
        let w = reply.withUnsafeBytes { pair.server.write(from: $0.baseAddress!, count: $0.count) }
        #expect(w == .bytes(2000))
        pair.pump()
        // TLS 1.3: the session tickets came before the reply, in the same socket read.
        let reader = try EdgeReader(pair.client, fd: pair.clientFd)
        reader.run { reader.received.count >= reply.count }
        #expect(reader.received == reply)
        #expect(!reader.io.readable)
        #expect(reader.emptyReads == 0)
    }
}
