import Foundation
import SluiceConfig
import Testing

/// `access_log` is a key of every listener (SPEC §8), off unless written.
@Suite struct L4AccessLogConfigTests {
    private func document(_ kind: String, _ extra: String, group: String = "db") -> String {
        """
        listeners:
          - name: l4
            protocol: \(kind)
            bind: 127.0.0.1:5432
            default: { forward: \(group) }
        \(extra.isEmpty ? "" : "    " + extra)
        target_groups:
          - { name: db, protocol: \(kind == "tls" ? "tcp" : kind), targets: [] }
        """
    }

    @Test(arguments: ["tcp", "udp", "tcp_udp"])
    func loadsOnL4Listeners(kind: String) throws {
        #expect(try #require(load(document(kind, ""))).listeners[0].accessLog == .off)
        #expect(try #require(load(document(kind, "access_log: stdout"))).listeners[0].accessLog == .stdout)
        #expect(try #require(load(document(kind, "access_log: off"))).listeners[0].accessLog == .off)
        let file = try #require(load(document(kind, "access_log: /var/log/sluice/l4.log"))).listeners[0]
        #expect(file.accessLog == .file("/var/log/sluice/l4.log"))
        #expect(file.http == nil)
    }

    @Test func loadsOnTLSListeners() throws {
        let dir = try temporaryDirectory(files: ["a.pem", "a.key"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = document("tls", "access_log: stdout\n    tls: { certificates: [ { cert: \(dir)/a.pem, key: \(dir)/a.key } ] }")
        #expect(try #require(load(yaml)).listeners[0].accessLog == .stdout)
    }

    @Test func badValuesAreRefusedOnL4ListenersToo() {
        #expect(loadErrors(document("udp", "access_log: logs/l4.log")).map { "\($0.line):\($0.column) \($0.path) \($0.message)" } == [
            "6:17 listeners[0].access_log expected off, stdout or an absolute file path, got \"logs/l4.log\"",
        ])
    }

    /// An http listener's value is the listener's and its settings' (one place reads it, one error).
    @Test func httpListenersKeepTheirSetting() throws {
        let l = try #require(load(httpListenerDocument("access_log: stdout"))).listeners[0]
        #expect(l.accessLog == .stdout)
        #expect(l.http?.accessLog == .stdout)
        #expect(loadErrors(httpListenerDocument("access_log: 3")).count == 1)
    }
}
