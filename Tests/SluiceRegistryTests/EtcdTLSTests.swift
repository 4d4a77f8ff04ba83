import Foundation
import Testing
import SluiceRegistry
import SluiceTestSupport

/// `https://` endpoints against a real etcd serving its clients over TLS (the test PKI's
/// `a.pem`, which carries IP:127.0.0.1), with and without client certificates.
@Suite struct EtcdTLSTests {
    private func files(clientAuth: Bool) throws -> EtcdProcess.TLSFiles {
        EtcdProcess.TLSFiles(cert: try TestCerts.path("a.pem"), key: try TestCerts.path("a.key"), ca: try TestCerts.path("ca.pem"),
                             clientCA: clientAuth ? try TestCerts.path("ca.pem") : nil,
                             clientCert: try TestCerts.path("client.pem"), clientKey: try TestCerts.path("client.key"))
    }

    @Test func callsAndWatchOverTLS() throws {
        let etcd = try EtcdProcess(tls: try files(clientAuth: false))
        let client = try EtcdClient(endpoints: [etcd.endpoint], tls: EtcdTLS(caFile: try TestCerts.path("ca.pem")))
        let log = EventLog()
        let watch = try client.watch(prefix: "/t/", startRevision: 1) { log.append($0) }
        defer { watch.cancel() }
        try client.put(key: "/t/a", value: bytes("A"))
        #expect(try client.range(key: "/t/", prefix: true).kvs.map(\.key) == ["/t/a"])
        let lease = try client.grantLease(ttl: 5)
        #expect(try client.keepAlive(lease: lease) > 0)
        try client.delete(key: "/t/a")
        #expect(log.wait { _ in log.changes == ["put /t/a=A", "delete /t/a"] }, "\(log.all)")
    }

    /// A server certificate that may also act as a client: with `--client-cert-auth`, etcd 3.4's
    /// gateway dials its own gRPC server with the server certificate.
    private func dualUseCertificate() throws -> (cert: String, key: String) {
        let dir = try TestCerts.directory()
        let cert = dir + "/etcd-dual.pem", key = dir + "/etcd-dual.key"
        if FileManager.default.fileExists(atPath: cert) { return (cert, key) }
        let ext = dir + "/etcd-dual.ext"
        try "extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = IP:127.0.0.1\n".write(toFile: ext, atomically: true, encoding: .utf8)
        let csr = dir + "/etcd-dual.csr"
        let a = try runTool("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                        "-subj", "/CN=etcd", "-keyout", key, "-out", csr])
        let b = try runTool("openssl", ["x509", "-req", "-in", csr, "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key",
                                        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert])
        guard a.status == 0, b.status == 0 else { throw TestSocket.Failure("openssl: \(a.output) \(b.output)") }
        return (cert, key)
    }

    @Test func clientCertificateRequiredByEtcd() throws {
        let dual = try dualUseCertificate()
        var files = try files(clientAuth: true)
        files.cert = dual.cert
        files.key = dual.key
        let etcd = try EtcdProcess(tls: files)
        let ca = try TestCerts.path("ca.pem")
        let with = try EtcdClient(endpoints: [etcd.endpoint], tls: EtcdTLS(
            caFile: ca, certificateFile: try TestCerts.path("client.pem"), keyFile: try TestCerts.path("client.key")))
        try with.put(key: "/k", value: bytes("v"))
        let without = try EtcdClient(endpoints: [etcd.endpoint], tls: EtcdTLS(caFile: ca), requestTimeout: .seconds(3))
        #expect(throws: EtcdError.self) { try without.range(key: "/k") }
    }

    @Test func untrustedServerIsRefused() throws {
        let etcd = try EtcdProcess(tls: try files(clientAuth: false))
        let client = try EtcdClient(endpoints: [etcd.endpoint], tls: EtcdTLS(caFile: try TestCerts.path("other-ca.pem")),
                                    requestTimeout: .seconds(3))
        do {
            _ = try client.range(key: "/k")
            Issue.record("answered")
        } catch {
            guard case .unavailable(let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("verify"), "\(reason)")
        }
        #expect(throws: EtcdError.self) {
            try EtcdClient(endpoints: [etcd.endpoint], tls: EtcdTLS(certificateFile: "/nonexistent.pem"))
        }
    }
}
