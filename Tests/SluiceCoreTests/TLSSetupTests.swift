import Foundation
import SluiceCore
import Testing

/// Settings that cannot work fail at context creation with a `TLSSetupError` naming the file.
@Suite struct TLSSetupTests {
    func settings(cert: String, key: String) throws -> TLSServerSettings {
        TLSServerSettings(certificates: [TLSCertificateFiles(cert: try TLSFixtures.path(cert), key: try TLSFixtures.path(key))])
    }

    /// The error `body` threw; nil when it threw none (or another kind).
    func setupError(_ body: () throws -> Void) -> TLSSetupError? {
        do {
            try body()
            return nil
        } catch {
            return error as? TLSSetupError
        }
    }

    @Test func notACertificate() throws {
        let s = try settings(cert: "bad.pem", key: "a.key")
        let e = try #require(setupError { _ = try TLSServerContext(s) })
        #expect(e.file == (try TLSFixtures.path("bad.pem")))
        #expect(e.message == "cannot read certificate: no start line")
        #expect(e.description.hasSuffix("bad.pem: cannot read certificate: no start line"))
    }

    @Test func aMissingFile() throws {
        let s = try settings(cert: "nothing-here.pem", key: "a.key")
        let e = try #require(setupError { _ = try TLSServerContext(s) })
        #expect(e.file?.hasSuffix("nothing-here.pem") == true)
        #expect(e.message.hasPrefix("cannot read certificate: "))
        #expect(e.message.lowercased().contains("no such file"), "\(e.message)")
    }

    @Test(arguments: [("a", "b"), ("b", "client"), ("a", "bad")])
    func aKeyThatIsNotTheCertificates(cert: String, key: String) throws {
        // a.pem (RSA) with b.key (ECDSA): another type; b.pem with client.key: same type, other pair.
        let s = try settings(cert: cert + ".pem", key: key + (key == "bad" ? ".pem" : ".key"))
        let e = try #require(setupError { _ = try TLSServerContext(s) })
        #expect(e.file?.hasSuffix("/" + key + (key == "bad" ? ".pem" : ".key")) == true)
        if key == "bad" {
            #expect(e.message.hasPrefix("cannot read private key: "), "\(e.message)")
        } else {
            #expect(e.message == "private key does not match certificate")
        }
    }

    @Test func theSecondCertificateIsCheckedToo() throws {
        var s = try settings(cert: "a.pem", key: "a.key")
        s.certificates.append(TLSCertificateFiles(cert: try TLSFixtures.path("b.pem"), key: try TLSFixtures.path("a.key")))
        let e = try #require(setupError { _ = try TLSServerContext(s) })
        #expect(e.file == (try TLSFixtures.path("a.key")))
    }

    @Test func noCertificateAtAll() {
        let e = setupError { _ = try TLSServerContext(TLSServerSettings(certificates: [])) }
        #expect(e?.file == nil && e?.message.isEmpty == false)
    }

    @Test func verifyNeedsACAFile() throws {
        var s = try settings(cert: "a.pem", key: "a.key")
        s.clientAuth = (mode: .verify, caFile: nil)
        #expect(setupError { _ = try TLSServerContext(s) } != nil)
        s.clientAuth = (mode: .verify, caFile: try TLSFixtures.path("bad.pem"))
        #expect(setupError { _ = try TLSServerContext(s) }?.file == (try TLSFixtures.path("bad.pem")))
    }

    @Test func alpnNamesMustFitTheWire() throws {
        var s = try settings(cert: "a.pem", key: "a.key")
        s.alpn = ["h2", ""]
        #expect(setupError { _ = try TLSServerContext(s) } != nil)
        s.alpn = [String(repeating: "x", count: 256)]
        #expect(setupError { _ = try TLSServerContext(s) } != nil)
        #expect(setupError { _ = try TLSClientContext(verify: false, caFile: nil, alpn: [""]) } != nil)
    }

    @Test func clientContextErrorsNameTheFile() throws {
        let badCA = try TLSFixtures.path("bad.pem")
        #expect(setupError { _ = try TLSClientContext(verify: true, caFile: badCA, alpn: []) }?.file == badCA)
        let mismatch = TLSCertificateFiles(cert: try TLSFixtures.path("client.pem"), key: try TLSFixtures.path("b.key"))
        let e = setupError { _ = try TLSClientContext(verify: false, caFile: nil, alpn: [], certificate: mismatch) }
        #expect(e?.file == mismatch.key)
        #expect(e?.message == "private key does not match certificate")
        #expect(setupError { _ = try TLSClientContext(verify: false, caFile: nil, alpn: [], minVersion: .v1_3,
                                                      maxVersion: .v1_2) } != nil)
    }

    @Test func aChainFileSendsItsIntermediates() throws {
        // b.pem followed by ca.pem stands in for leaf + intermediate: both go out.
        let chain = NSTemporaryDirectory() + "sluice-chain-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).pem"
        let output = chain + ".out"
        defer { for f in [chain, output] { try? FileManager.default.removeItem(atPath: f) } }
        let pems = try String(contentsOfFile: try TLSFixtures.path("b.pem"), encoding: .utf8)
            + String(contentsOfFile: try TLSFixtures.path("ca.pem"), encoding: .utf8)
        try pems.write(toFile: chain, atomically: true, encoding: .utf8)
        let server = try TLSServerContext(TLSServerSettings(
            certificates: [TLSCertificateFiles(cert: chain, key: try TLSFixtures.path("b.key"))], alpn: ["h2"]))
        let served = try serveOneOpenSSLClient(server, arguments: ["-showcerts", "-CAfile", try TLSFixtures.path("ca.pem")],
                                               output: output)
        #expect(served.step == .done)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1 == 2, "\(text.prefix(3000))")
        #expect(text.contains("Verify return code: 0 (ok)"))
    }

    @Test func failureLabelsAreSnakeCase() {
        #expect(TLSFailure.allCases.map(\.rawValue) == [
            "timeout", "protocol_version", "no_shared_cipher", "no_client_certificate", "bad_certificate",
            "verify_failed", "peer_closed", "not_tls", "error",
        ])
    }
}
