import Foundation
import SluiceCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Handshakes between a server and a client `TLSStream` over a socket pair: certificate choice,
/// ALPN, versions, failure classes, and bytes afterwards.
@Suite struct TLSHandshakeTests {
    @Test(arguments: [
        ("a.example", "CN=a.example"), ("b.example", "CN=b.example"), ("B.Example", "CN=b.example"),
        ("x.wild.example", "CN=b.example"), ("unknown.example", "CN=a.example"), ("localhost", "CN=a.example"),
    ])
    func sniPicksTheCertificate(name: String, subject: String) throws {
        let pair = try TLSPair(try makeServer(["a", "b"]), try makeClient(), serverName: name)
        let (s, c) = pair.handshake()
        #expect(s == .done && c == .done)
        #expect(pair.client.peerCertificate()?.subject == subject)
        #expect(pair.server.serverName == name)
    }

    @Test func sniChoiceVerifiesAgainstTheSAN() throws {
        // b.pem (ECDSA) carries b.example and *.wild.example, a.pem (RSA) does not: a verifying
        // client that gets through proves the SNI switch handed out b.pem's chain.
        let client = try makeClient(verify: true, caFile: try TLSFixtures.path("ca.pem"))
        for name in ["b.example", "deep.wild.example"] {
            let pair = try TLSPair(try makeServer(["a", "b"]), client, serverName: name)
            let (s, c) = pair.handshake()
            #expect(s == .done && c == .done, "\(name): \(pair.client.failureDetail)")
            #expect(pair.client.peerVerified)
        }
    }

    @Test func withoutSNITheFirstCertificateIsTheDefault() throws {
        let ab = try TLSPair(try makeServer(["a", "b"]), try makeClient(), serverName: nil)
        #expect(ab.handshake() == (.done, .done))
        #expect(ab.client.peerCertificate()?.subject == "CN=a.example")
        #expect(ab.server.serverName == nil)
        let ba = try TLSPair(try makeServer(["b", "a"]), try makeClient(), serverName: nil)
        #expect(ba.handshake() == (.done, .done))
        #expect(ba.client.peerCertificate()?.subject == "CN=b.example")
    }

    @Test func singleECDSACertificateWithTLS12() throws {
        let pair = try TLSPair(try makeServer(["b"]), try makeClient(maxVersion: .v1_2), serverName: "b.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.server.versionName == "TLSv1.2" && pair.client.versionName == "TLSv1.2")
        #expect(pair.client.peerCertificate()?.subject == "CN=b.example")
    }

    @Test func defaultsNegotiateTLS13() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.server.versionName == "TLSv1.3")
        #expect(!pair.server.resumed && !pair.client.resumed)
        #expect(pair.server.failureDetail.isEmpty)
    }

    @Test(arguments: [
        (["h2", "http/1.1"], ["h2", "http/1.1"], TLSALPN.h2),
        (["h2", "http/1.1"], ["http/1.1", "h2"], .h2),  // the server's order wins
        (["http/1.1", "h2"], ["h2", "http/1.1"], .http11),
        (["h2", "http/1.1"], ["http/1.1"], .http11),
        (["h2", "http/1.1"], [], .none),  // no ALPN from the client: fine, HTTP/1.1
        (["h2"], ["spdy/3", "acme-tls/1"], .none),  // no overlap: not a failure
        ([], ["h2", "http/1.1"], .none),  // a listener without ALPN
    ])
    func alpn(server: [String], client: [String], expected: TLSALPN) throws {
        let pair = try TLSPair(try makeServer(["a"], alpn: server), try makeClient(alpn: client), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.server.alpn == expected)
        #expect(pair.client.alpn == expected)
    }

    @Test func alpnReportsAnUnnamedProtocol() throws {
        let pair = try TLSPair(try makeServer(["a"], alpn: ["acme-tls/1"]), try makeClient(alpn: ["acme-tls/1"]),
                               serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.server.alpn == .none && pair.server.alpnProtocol == "acme-tls/1")
    }

    @Test func minimumTLS13RefusesATLS12Client() throws {
        let pair = try TLSPair(try makeServer(["a"], minVersion: .v1_3), try makeClient(maxVersion: .v1_2),
                               serverName: "a.example")
        let (s, c) = pair.handshake()
        #expect(s == .failed(.protocolVersion))
        #expect(c == .failed(.protocolVersion))
        #expect(pair.server.failureDetail.contains("unsupported protocol"), "\(pair.server.failureDetail)")
    }

    @Test func minimumTLS13AcceptsTLS13() throws {
        let pair = try TLSPair(try makeServer(["a"], minVersion: .v1_3), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.client.versionName == "TLSv1.3")
    }

    // MARK: - Not TLS, peer gone

    @Test(arguments: ["GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", "CONNECT a.example:443 HTTP/1.1\r\n\r\n",
                      "SSH-2.0-OpenSSH_9.2\r\n", "hello, is anybody there?\n"])
    func plainTextIsNotTLS(text: String) throws {
        let sockets = try SocketPair()
        guard let server = try makeServer(["a"]).makeStream(fd: sockets.server) else { throw TestFailure("no stream") }
        let bytes = Array(text.utf8)
        #expect(write(sockets.client, bytes, bytes.count) == bytes.count)
        #expect(server.handshake() == .failed(.notTLS))
        #expect(!server.failureDetail.isEmpty)
    }

    @Test func aClientTalkingToAPlainServerSeesNotTLS() throws {
        let sockets = try SocketPair()
        guard let client = try makeClient().makeStream(fd: sockets.client, serverName: "a.example") else {
            throw TestFailure("no stream")
        }
        #expect(client.handshake() == .wantsRead)
        let answer = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)
        #expect(write(sockets.server, answer, answer.count) == answer.count)
        #expect(client.handshake() == .failed(.notTLS))
    }

    @Test func peerClosingDuringTheHandshake() throws {
        let sockets = try SocketPair()
        guard let server = try makeServer(["a"]).makeStream(fd: sockets.server) else { throw TestFailure("no stream") }
        #expect(server.handshake() == .wantsRead)
        // Half a record header, then EOF.
        let partial: [UInt8] = [0x16, 0x03, 0x01]
        #expect(write(sockets.client, partial, partial.count) == 3)
        #expect(server.handshake() == .wantsRead)
        sockets.closeClient()
        #expect(server.handshake() == .failed(.peerClosed))
    }

    @Test func aStaleErrorOnTheThreadDoesNotLeakIntoAnotherStream() throws {
        // One stream fails (leaving OpenSSL errors behind on this thread), then another works.
        let sockets = try SocketPair()
        guard let bad = try makeServer(["a"]).makeStream(fd: sockets.server) else { throw TestFailure("no stream") }
        let junk = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        _ = write(sockets.client, junk, junk.count)
        #expect(bad.handshake() == .failed(.notTLS))
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.exchangeGreeting())
    }

    // MARK: - Bytes after the handshake

    @Test func oneMebibyteEachWayArrivesIntactWithPartialWrites() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let up = pair.transfer(payload, from: pair.client, to: pair.server)
        #expect(up.received.count == payload.count)
        #expect(up.received == payload)
        #expect(up.partialWrites > 0)
        let down = pair.transfer(payload, from: pair.server, to: pair.client, chunk: 100_000)
        #expect(down.received == payload)
        #expect(down.partialWrites > 0)
    }

    @Test func closeNotifyReadsAsClosed() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        let last = Array("last words".utf8)
        #expect(pair.transfer(last, from: pair.client, to: pair.server).received == last)
        pair.client.shutdown()
        pair.client.shutdown()  // a second call does nothing
        let (bytes, end) = pair.readToEnd(pair.server)
        #expect(bytes.isEmpty)
        #expect(end == .closed)
    }

    @Test func aSmallReadLeavesTheRestBufferedInOpenSSL() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        let text = Array("0123456789".utf8)
        #expect(text.withUnsafeBytes { pair.client.write(from: $0.baseAddress!, count: $0.count) } == .bytes(10))
        var four = [UInt8](repeating: 0, count: 4)
        var first = TransportResult.wouldBlock
        let deadline = Date().addingTimeInterval(5)
        while first == .wouldBlock && Date() < deadline {
            first = four.withUnsafeMutableBytes { pair.server.read(into: $0.baseAddress!, count: 4) }
            if first == .wouldBlock { var p = pollfd(fd: pair.sockets.server, events: Int16(POLLIN), revents: 0); _ = poll(&p, 1, 20) }
        }
        #expect(first == .bytes(4))  // not .drained: the socket is empty but OpenSSL is not
        #expect(pair.server.hasBufferedInput)
        let rest = pair.readToEnd(pair.server, timeoutSeconds: 0.2).bytes
        #expect(four + rest == text)
        #expect(!pair.server.hasBufferedInput)
    }

    @Test func eofWithoutCloseNotifyReadsAsClosed() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.exchangeGreeting())
        pair.sockets.closeServer()
        #expect(pair.readToEnd(pair.client).end == .closed)
    }

    @Test func shutdownBeforeTheHandshakeIsHarmless() throws {
        let sockets = try SocketPair()
        guard let server = try makeServer(["a"]).makeStream(fd: sockets.server) else { throw TestFailure("no stream") }
        server.shutdown()
        #expect(server.handshake() == .wantsRead)
    }

    @Test func transportDelegatesToTheStream() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        let serverSide = Transport.tls(pair.server)
        let clientSide = Transport.tls(pair.client)
        #expect(!serverSide.canSplice && Transport.plain.canSplice)
        let text = Array("through the transport".utf8)
        let w = text.withUnsafeBytes { clientSide.write(pair.sockets.client, from: $0.baseAddress!, count: $0.count) }
        #expect(w == .bytes(text.count))
        var buffer = [UInt8](repeating: 0, count: 4096)
        var ready = Readiness()
        ready.readable = true
        var got: [UInt8] = []
        let deadline = Date().addingTimeInterval(5)
        while got.count < text.count && Date() < deadline {
            let step = buffer.withUnsafeMutableBytes { ready.read(serverSide, pair.sockets.server, into: $0.baseAddress!, count: $0.count) }
            switch step {
            case .moved(let n): got += buffer[0..<n]
            case .wait: var p = pollfd(fd: pair.sockets.server, events: Int16(POLLIN), revents: 0); _ = poll(&p, 1, 20)
            case .closed, .failed: Issue.record("unexpected \(step)"); return
            }
        }
        #expect(got == text)
        // TLS never claims the socket drained on a short read: the reader goes on to would-block.
        #expect(ready.readable || got.count == text.count)
    }
}
