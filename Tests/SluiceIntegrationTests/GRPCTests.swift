import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A gRPC call through sluiced with `Tests/Fixtures/grpc_client.py`; its one JSON line.
func grpcCall(_ port: UInt16, _ call: [String], options: [String] = []) throws -> [String: Any] {
    let r = try runTool(FixtureProcess.python, [fixturesDirectory.appendingPathComponent("grpc_client.py").path,
                                                "--target", "127.0.0.1:\(port)"] + options + call)
    let line = r.output.split(separator: "\n").last.map(String.init) ?? ""
    guard let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
        throw TestSocket.Failure("grpc_client: \(r.output)")
    }
    return json
}

/// HTTP/2 and gRPC to targets (`protocol_version: http2 | grpc`, SPEC §3).
@Suite(.serialized, .timeLimit(.minutes(10)))
struct GRPCTests {
    static func config(port: UInt16, grpc: [UInt16], dead: UInt16, h2: UInt16, check: String = "health_check: off",
                       extra: String = "") -> String {
        """
        node: { workers: 1, shutdown_grace: 2s }
        listeners:
          - name: web
            protocol: http
            bind: "127.0.0.1:\(port)"
            access_log: off
            rules:
              - { priority: 1, when: { header: { x-route: ["dead"] } }, then: { forward: dead } }
              - { priority: 2, when: { path: ["/test.Echo/*", "/grpc.health.v1.Health/*"] }, then: { forward: grpc } }
            default: { forward: h2 }
        target_groups:
          - name: grpc
            protocol: http
            protocol_version: grpc
            \(check)
            targets: [\(grpc.map { "{ address: \"127.0.0.1:\($0)\" }" }.joined(separator: ", "))]
          - { name: dead, protocol: http, protocol_version: grpc, health_check: off, targets: [{ address: "127.0.0.1:\(dead)" }] }
          - { name: h2, protocol: http, protocol_version: http2, health_check: off, targets: [{ address: "127.0.0.1:\(h2)" }] }
        \(extra)
        """
    }

    @Test func unaryStreamingAndStatusesPassEndToEnd() throws {
        let g = try FixtureProcess(script: "grpc_server.py", arguments: ["--name", "g1"])
        let h2 = try FixtureProcess(script: "h2_server.py", arguments: ["--name", "h2a"])
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: GRPCTests.config(port: port, grpc: [g.port], dead: try TestSocket.freePort(), h2: h2.port))
        defer { d.terminate() }
        let unary = try grpcCall(port, ["unary", "hello"])
        #expect(unary["code"] as? String == "OK", "\(unary)")
        #expect(unary["messages"] as? [String] == ["hello"])
        #expect((unary["trailing"] as? [String: String])?["x-served-by"] == "g1", "trailers pass end to end: \(unary)")
        #expect((unary["initial"] as? [String: String])?["x-seen-x-forwarded-for"] == "127.0.0.1", "\(unary)")
        let stream = try grpcCall(port, ["server-stream", "50"])
        #expect((stream["messages"] as? [String])?.count == 50, "\(stream)")
        #expect(stream["code"] as? String == "OK")
        let client = try grpcCall(port, ["client-stream", "a", "b", "c"])
        #expect(client["messages"] as? [String] == ["abc"], "\(client)")
        let fail = try grpcCall(port, ["fail"])
        #expect(fail["code"] as? String == "NOT_FOUND", "\(fail)")
        #expect(fail["details"] as? String == "nope")
    }

    @Test func sluicesOwnErrorsBecomeGRPCStatuses() throws {
        let g = try FixtureProcess(script: "grpc_server.py", arguments: ["--name", "g1"])
        let h2 = try FixtureProcess(script: "h2_server.py", arguments: ["--name", "h2a"])
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: GRPCTests.config(port: port, grpc: [g.port], dead: try TestSocket.freePort(), h2: h2.port))
        defer { d.terminate() }
        let dead = try grpcCall(port, ["unary", "x"], options: ["--metadata", "x-route=dead"])
        #expect(dead["code"] as? String == "UNAVAILABLE", "a dead target is UNAVAILABLE, not a transport error: \(dead)")
        #expect((dead["details"] as? String ?? "").hasPrefix("sluice"), "\(dead)")
    }

    @Test func grpcHealthChecksUseTheHealthService() throws {
        let serving = try FixtureProcess(script: "grpc_server.py", arguments: ["--name", "up", "--health", "SERVING"])
        let notServing = try FixtureProcess(script: "grpc_server.py", arguments: ["--name", "down", "--health", "NOT_SERVING"])
        let h2 = try FixtureProcess(script: "h2_server.py", arguments: ["--name", "h2a"])
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: GRPCTests.config(port: port, grpc: [serving.port, notServing.port],
                                                           dead: try TestSocket.freePort(), h2: h2.port,
                                                           check: "health_check: { interval: 200ms, timeout: 150ms }"))
        defer { d.terminate() }
        try waitUntil("SERVING healthy, NOT_SERVING unhealthy") {
            let out = (try? ctl(d, ["targets", "list"]))?.output ?? ""
            let lines = out.split(separator: "\n")
            return lines.contains { $0.contains("127.0.0.1:\(serving.port)") && $0.contains(" healthy") }
                && lines.contains { $0.contains("127.0.0.1:\(notServing.port)") && $0.contains("unhealthy") }
        }
        for _ in 0..<4 {
            let r = try grpcCall(port, ["unary", "x"])
            #expect((r["trailing"] as? [String: String])?["x-served-by"] == "up", "only the SERVING target gets calls: \(r)")
        }
    }

    @Test func http2TargetsServeHTTP1AndHTTP2Clients() throws {
        let h2 = try FixtureProcess(script: "h2_server.py", arguments: ["--name", "h2a"])
        let g = try FixtureProcess(script: "grpc_server.py", arguments: ["--name", "g1"])
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: GRPCTests.config(port: port, grpc: [g.port], dead: try TestSocket.freePort(), h2: h2.port))
        defer { d.terminate() }
        let r = try get(port, "/hello")
        #expect(r.status == 200)
        #expect(r.json["http_version"] as? String == "2", "HTTP/1.1 client, HTTP/2 target: \(r.text)")
        #expect(receivedHeaders(r)["x-forwarded-proto"] == "http")
        let file = d.directory.appendingPathComponent("body.bin")
        let payload = randomPayload(count: 2 * 1024 * 1024, seed: 5)
        try Data(payload).write(to: file)
        let expected = try runTool("sha256sum", [file.path]).output.split(separator: " ")[0]
        let post = try runTool("curl", ["-s", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/upload"])
        #expect(post.output.contains("\"body_sha\": \"\(expected)\""), "\(post.output.prefix(300))")
        let load = try runTool("h2load", ["-n", "600", "-c", "3", "-m", "8", "http://127.0.0.1:\(port)/x"])
        #expect(load.output.contains("600 succeeded"), "\(load.output)")
    }

    @Test func https2TargetsNegotiateH2() throws {
        let t = try FixtureProcess(script: "tls_backend.py", arguments: ["--cert", try TestCerts.path("a.pem"),
                                                                       "--key", try TestCerts.path("a.key"), "--h2", "--name", "tls2"])
        let port = try TestSocket.freePort()
        let yaml = """
        node: { workers: 1, shutdown_grace: 2s }
        listeners:
          - { name: web, protocol: http, bind: "127.0.0.1:\(port)", access_log: off, default: { forward: secure } }
        target_groups:
          - name: secure
            protocol: https
            protocol_version: http2
            health_check: off
            tls: { ca_file: \(try TestCerts.path("ca.pem")), server_name: a.example }
            targets: [{ address: "127.0.0.1:\(t.port)" }]

        """
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let r = try get(port, "/x")
        #expect(r.status == 200, "\(r.text)")
        let tls = r.json["tls"] as? [String: Any]
        #expect(tls?["alpn"] as? String == "h2", "\(r.text)")
        #expect(tls?["sni"] as? String == "a.example")
        #expect(r.json["http_version"] as? String == "2")
    }
}
