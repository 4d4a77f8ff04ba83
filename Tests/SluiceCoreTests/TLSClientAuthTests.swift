import Foundation
import SluiceCore
import Testing

/// Client certificates at the server (`verify`, `passthrough`) and server certificates at the
/// client (chain and name).
@Suite struct TLSClientAuthTests {
    func verifyingServer(_ version: TLSVersion = .v1_3) throws -> TLSServerContext {
        try makeServer(["a"], clientAuth: (mode: .verify, caFile: try TLSFixtures.path("ca.pem")))
    }

    @Test(arguments: [TLSVersion.v1_2, .v1_3])
    func verifyRefusesAClientWithoutCertificate(version: TLSVersion) throws {
        let pair = try TLSPair(try verifyingServer(), try makeClient(maxVersion: version), serverName: "a.example")
        let (s, _) = pair.handshake()
        #expect(s == .failed(.noClientCertificate), "\(pair.server.failureDetail)")
    }

    @Test(arguments: [TLSVersion.v1_2, .v1_3])
    func verifyRefusesAStrangersCertificate(version: TLSVersion) throws {
        let pair = try TLSPair(try verifyingServer(), try makeClient(certificate: "stranger", maxVersion: version),
                               serverName: "a.example")
        let (s, c) = pair.handshake()
        #expect(s == .failed(.verifyFailed), "\(pair.server.failureDetail)")
        if version == .v1_2 {
            // TLS 1.2: the client learns during its handshake (unknown CA alert).
            #expect(c == .failed(.badCertificate), "\(pair.client.failureDetail)")
        } else {
            // TLS 1.3: the client finished first and learns from its next read.
            let end = pair.readToEnd(pair.client).end
            #expect(end == .failed(Errno(EPROTO)))
            #expect(pair.client.failureDetail.contains("unknown ca"), "\(pair.client.failureDetail)")
        }
    }

    @Test(arguments: [TLSVersion.v1_2, .v1_3])
    func verifyAcceptsTheClientCertificate(version: TLSVersion) throws {
        let pair = try TLSPair(try verifyingServer(), try makeClient(certificate: "client", maxVersion: version),
                               serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.exchangeGreeting())
        let peer = try #require(pair.server.peerCertificate())
        #expect(peer.subject == "CN=client-1,O=Sluice Tests")
        #expect(pair.server.peerVerified)

        // The serial as the openssl CLI prints it.
        let out = NSTemporaryDirectory() + "sluice-serial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try TLSFixtures.run("/usr/bin/openssl", ["x509", "-noout", "-serial", "-in", try TLSFixtures.path("client.pem")],
                            output: out)
        let cli = try String(contentsOfFile: out, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(cli == "serial=" + peer.serialHex)
        #expect(peer.serialHex.allSatisfy { "0123456789ABCDEF".contains($0) })

        // The PEM decodes to the file's leaf, and only unreserved characters stayed unencoded.
        let file = try String(contentsOfFile: try TLSFixtures.path("client.pem"), encoding: .utf8)
        #expect(percentDecoded(peer.pemPercentEncoded) == Array(file.utf8))
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%")
        #expect(peer.pemPercentEncoded.allSatisfy { unreserved.contains($0) })
        #expect(peer.pemPercentEncoded.hasPrefix("-----BEGIN%20CERTIFICATE-----%0A"))
    }

    @Test func thePeerCertificateOfAServerOnTheClientSide() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.client.peerCertificate()?.subject == "CN=a.example")
        #expect(pair.server.peerCertificate() == nil)  // no client certificate requested
    }

    @Test func passthroughAcceptsNoCertificate() throws {
        let pair = try TLSPair(try makeServer(["a"], clientAuth: (mode: .passthrough, caFile: nil)), try makeClient(),
                               serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.exchangeGreeting())
        #expect(pair.server.peerCertificate() == nil)
    }

    @Test func passthroughAcceptsAnyCertificateAndPassesItOn() throws {
        let server = try makeServer(["a"], clientAuth: (mode: .passthrough, caFile: try TLSFixtures.path("ca.pem")))
        let pair = try TLSPair(server, try makeClient(certificate: "stranger"), serverName: "a.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(pair.exchangeGreeting())
        #expect(pair.server.peerCertificate()?.subject == "CN=stranger,O=Somebody Else")
        #expect(!pair.server.peerVerified)
        let known = try TLSPair(server, try makeClient(certificate: "client"), serverName: "a.example")
        #expect(known.handshake() == (.done, .done))
        #expect(known.server.peerCertificate()?.subject == "CN=client-1,O=Sluice Tests")
        #expect(known.server.peerVerified)
    }

    // MARK: - The client verifying the server

    @Test(arguments: ["a.example", "localhost", "127.0.0.1"])
    func clientVerificationPasses(name: String) throws {
        let client = try makeClient(verify: true, caFile: try TLSFixtures.path("ca.pem"))
        let pair = try TLSPair(try makeServer(["a", "b"]), client, serverName: name)
        #expect(pair.handshake() == (.done, .done), "\(pair.client.failureDetail)")
        #expect(pair.client.peerVerified)
    }

    @Test(arguments: ["wrong.example", "127.0.0.2", "wild.example"])
    func clientVerificationFailsOnTheWrongName(name: String) throws {
        let client = try makeClient(verify: true, caFile: try TLSFixtures.path("ca.pem"))
        let pair = try TLSPair(try makeServer(["a", "b"]), client, serverName: name)
        let (s, c) = pair.handshake()
        #expect(c == .failed(.verifyFailed))
        #expect(s == .failed(.badCertificate), "\(pair.server.failureDetail)")
        #expect(pair.client.failureDetail.contains("certificate verify failed"))
        #expect(pair.client.failureDetail.contains("mismatch"), "\(pair.client.failureDetail)")
    }

    @Test func clientVerificationFailsAgainstAnotherCA() throws {
        for caFile in [try TLSFixtures.path("other-ca.pem"), nil] {  // nil: the system's CAs
            let client = try makeClient(verify: true, caFile: caFile)
            let pair = try TLSPair(try makeServer(["a"]), client, serverName: "a.example")
            #expect(pair.handshake().client == .failed(.verifyFailed))
        }
    }

    @Test func clientWithoutVerificationAcceptsAnything() throws {
        let pair = try TLSPair(try makeServer(["a"]), try makeClient(verify: false), serverName: "wrong.example")
        #expect(pair.handshake() == (.done, .done))
        #expect(!pair.client.peerVerified)
    }
}
