import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One request on a new connection to `host:port`; the response the server closed after.
func request(host: String, port: UInt16, _ raw: String) throws -> HTTPClient.Response {
    let fd = try TestSocket.connect(port: port, host: host)
    defer { close(fd) }
    try TestSocket.sendAll(fd, Array(raw.utf8))
    let bytes = try TestSocket.receiveAll(fd)
    guard let r = HTTPClient.parse(bytes).first else {
        throw TestSocket.Failure("no HTTP response: \(String(decoding: bytes, as: UTF8.self))")
    }
    return r
}

/// IPv6 clients on http and tcp listeners, with and without `source` rules. (A `::1` client
/// on an http listener with a source rule used to crash the worker with an arithmetic
/// overflow while packing the address.)
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HTTPIPv6Tests {
    private static func respondRule(_ priority: Int, _ cidr: String, _ body: String) -> String {
        "  - { priority: \(priority), when: { source: [\"\(cidr)\"] }, then: { respond: { status: 200, "
            + "content_type: text/plain, body: \"\(body)\\n\" } } }"
    }

    @Test func sourceRulesSeeIPv6AndIPv4Clients() throws {
        let a = try HTTPBackend(name: "a")
        let port6 = try TestSocket.freePort()
        let port4 = try TestSocket.freePort()
        let plain6 = try TestSocket.freePort()
        let rules = [
            "rules:",
            Self.respondRule(10, "2001:db8::/32", "doc6"),
            Self.respondRule(20, "0.0.0.0/0", "any4"),
            Self.respondRule(30, "::1/128", "loop6"),
        ]
        var yaml = httpConfig(port: port4, groups: [("app", [a.port])], listener: rules)
        yaml = yaml.replacingOccurrences(of: "target_groups:", with: """
              - name: web6
                protocol: http
                bind: "[::1]:\(port6)"
                access_log: off
                default: { forward: app }
            \(rules.map { "    " + $0 }.joined(separator: "\n"))
              - name: plain6
                protocol: http
                bind: "[::1]:\(plain6)"
                access_log: off
                default: { forward: app }
            target_groups:
            """)
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let get = "GET / HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n"

        // ::1 is in neither 2001:db8::/32 nor the IPv4 range, and is in ::1/128.
        let six = try request(host: "::1", port: port6, get)
        #expect(six.status == 200 && six.text == "loop6\n", "\(six.status) \(six.text)")
        // An IPv4 client: only the IPv4 range matches.
        let four = try request(host: "127.0.0.1", port: port4, get)
        #expect(four.status == 200 && four.text == "any4\n", "\(four.status) \(four.text)")
        // No rules on an IPv6 listener: forwarded, the client address passed on.
        let forwarded = try request(host: "::1", port: plain6, get)
        #expect(forwarded.status == 200 && forwarded.header("x-backend") == "a")
        #expect(receivedHeaders(forwarded)["x-forwarded-for"] == "::1")
        #expect(d.isRunning)
    }

    @Test func nonMatchingIPv6SourceFallsToTheDefault() throws {
        let a = try HTTPBackend(name: "a")
        let port6 = try TestSocket.freePort()
        var yaml = httpConfig(port: port6, groups: [("app", [a.port])],
                              listener: ["rules:", Self.respondRule(10, "fe80::/10", "link"),
                                         Self.respondRule(20, "127.0.0.0/8", "v4")])
        yaml = yaml.replacingOccurrences(of: "bind: \"127.0.0.1:\(port6)\"", with: "bind: \"[::1]:\(port6)\"")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        for _ in 0..<3 {
            let r = try request(host: "::1", port: port6, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            #expect(r.status == 200 && r.header("x-backend") == "a", "\(r.status) \(r.text)")
        }
        #expect(d.isRunning)
    }

    @Test func tcpListenerOnIPv6() throws {
        let backend = try TCPBackend(mode: .name("b6"))
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "[::1]:\(port)", targets: [("127.0.0.1:\(backend.port)", 1)],
                                                   algorithm: "flow_hash"))
        defer { d.terminate() }
        for _ in 0..<3 {
            let fd = try TestSocket.connect(port: port, host: "::1")
            let got = String(decoding: try TestSocket.receiveAll(fd), as: UTF8.self)
            close(fd)
            #expect(got == "b6\n")
        }
        #expect(d.isRunning)
    }
}
