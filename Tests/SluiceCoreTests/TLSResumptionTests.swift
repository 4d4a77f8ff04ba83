import Foundation
import SluiceCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Stateless session tickets: process-wide keys, resumption across contexts, rotation, and the
/// openssl CLI as an independent client.
@Suite struct TLSResumptionTests {
    /// A full handshake on `first`, then one offering its session on `second`; the second pair.
    func resume(_ first: TLSServerContext, _ second: TLSServerContext, client: TLSClientContext,
                serverName: String = "a.example") throws -> TLSPair {
        let one = try TLSPair(first, client, serverName: serverName)
        #expect(one.handshake() == (.done, .done))
        #expect(!one.client.resumed && !one.server.resumed)
        #expect(one.exchangeGreeting())  // TLS 1.3 tickets arrive with the first read
        let session = try #require(one.client.session())
        let two = try TLSPair(second, client, serverName: serverName, session: session)
        #expect(two.handshake() == (.done, .done))
        #expect(two.exchangeGreeting())
        return two
    }

    @Test(arguments: [TLSVersion.v1_2, .v1_3])
    func aTicketFromOneContextResumesOnAnother(version: TLSVersion) throws {
        // Two contexts as two workers (or a reload) would build them, sharing the process-wide keys.
        let two = try resume(try makeServer(["a", "b"]), try makeServer(["a", "b"]), client: try makeClient(maxVersion: version))
        #expect(two.server.resumed && two.client.resumed)
        #expect(two.server.versionName == (version == .v1_2 ? "TLSv1.2" : "TLSv1.3"))
    }

    @Test func resumptionKeepsTheClientCertificateUnderVerify() throws {
        let auth: (mode: TLSClientAuthMode, caFile: String?) = (mode: .verify, caFile: try TLSFixtures.path("ca.pem"))
        let two = try resume(try makeServer(["a"], clientAuth: auth), try makeServer(["a"], clientAuth: auth),
                             client: try makeClient(certificate: "client"))
        #expect(two.server.resumed)
        #expect(two.server.peerCertificate()?.subject == "CN=client-1,O=Sluice Tests")
    }

    @Test func aTicketDoesNotCrossAClientCertificatePolicy() throws {
        // A session made without client certificates must not skip verification elsewhere.
        let open = try makeServer(["a"])
        let verifying = try makeServer(["a"], clientAuth: (mode: .verify, caFile: try TLSFixtures.path("ca.pem")))
        let two = try resume(open, verifying, client: try makeClient(certificate: "client"))
        #expect(!two.server.resumed)
        #expect(two.server.peerVerified)
    }

    @Test(arguments: [TLSVersion.v1_2, .v1_3])
    func previousKeysStillDecryptAfterARotation(version: TLSVersion) throws {
        let keys = TLSTicketKeys()
        let server = try makeServer(["a"], ticketKeys: keys)
        let client = try makeClient(maxVersion: version)
        let one = try TLSPair(server, client, serverName: "a.example")
        #expect(one.handshake() == (.done, .done))
        #expect(one.exchangeGreeting())
        let session = try #require(one.client.session())
        #expect(keys.keyCount == 1)

        keys.rotate()
        #expect(keys.keyCount == 2)
        let afterOne = try TLSPair(server, client, serverName: "a.example", session: session)
        #expect(afterOne.handshake() == (.done, .done))
        #expect(afterOne.server.resumed)

        keys.rotate()
        keys.rotate()  // current + 2 previous: the first key is gone
        #expect(keys.keyCount == 3)
        let afterThree = try TLSPair(server, client, serverName: "a.example", session: session)
        #expect(afterThree.handshake() == (.done, .done))
        #expect(!afterThree.server.resumed && !afterThree.client.resumed)
    }

    @Test func keysRotateByThemselvesWhenDue() throws {
        // An interval of 1 ns and no previous keys: every ticket operation finds a new key, so
        // no ticket ever resumes.
        let keys = TLSTicketKeys(rotationInterval: 1, previousKept: 0)
        let server = try makeServer(["a"], ticketKeys: keys)
        let two = try resume(server, server, client: try makeClient())
        #expect(!two.server.resumed)
        #expect(keys.keyCount == 1)
    }

    @Test func ownKeysDoNotDecryptTheSharedKeysTickets() throws {
        let two = try resume(try makeServer(["a"]), try makeServer(["a"], ticketKeys: TLSTicketKeys()),
                             client: try makeClient())
        #expect(!two.server.resumed)
    }

    @Test(arguments: ["-tls1_2", "-tls1_3"])
    func opensslClientResumesWithSessOutAndSessIn(versionFlag: String) throws {
        let server = try makeServer(["a", "b"], alpn: ["h2", "http/1.1"])
        let base = NSTemporaryDirectory() + "sluice-sess-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            for suffix in [".pem", ".out1", ".out2"] { try? FileManager.default.removeItem(atPath: base + suffix) }
        }
        let first = try serveOneOpenSSLClient(server, arguments: [versionFlag, "-sess_out", base + ".pem"], output: base + ".out1")
        #expect(first.step == .done, "\(first.stream.failureDetail)")
        #expect(!first.stream.resumed)
        let firstOutput = try String(contentsOfFile: base + ".out1", encoding: .utf8)
        #expect(firstOutput.contains("New, TLSv1."), "\(firstOutput.prefix(2000))")
        #expect(firstOutput.contains("hello from sluice"))

        let second = try serveOneOpenSSLClient(server, arguments: [versionFlag, "-sess_in", base + ".pem"], output: base + ".out2")
        #expect(second.step == .done, "\(second.stream.failureDetail)")
        #expect(second.stream.resumed)
        let secondOutput = try String(contentsOfFile: base + ".out2", encoding: .utf8)
        #expect(secondOutput.contains("Reused, TLSv1."), "\(secondOutput.prefix(2000))")
    }

    @Test(arguments: [["-tls1_2", "-cipher", "AES128-SHA"], ["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"]])
    func opensslClientWithoutASharedCipher(arguments: [String]) throws {
        let output = NSTemporaryDirectory() + "sluice-cipher-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let served = try serveOneOpenSSLClient(try makeServer(["a"]), arguments: arguments, output: output)
        #expect(served.step == .failed(.noSharedCipher), "\(served.stream.failureDetail)")
    }
}
