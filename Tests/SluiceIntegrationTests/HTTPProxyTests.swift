import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// ALB mode end to end: the real sluiced between curl / raw sockets and real HTTP targets.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HTTPProxyTests {
    @Test func forwardsWithForwardedHeadersAndKeepsHost() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let r = try get(port, "/hello?x=1", headers: ["X-Forwarded-For: 10.1.1.1"])
        #expect(r.status == 200)
        let h = receivedHeaders(r)
        #expect(h["host"] == "test.local")
        #expect(h["x-forwarded-for"] == "10.1.1.1, 127.0.0.1")
        #expect(h["x-forwarded-proto"] == "http")
        #expect(h["x-forwarded-port"] == "\(port)")
        #expect((h["x-sluice-trace"] ?? "").count == 16)
        #expect(h["connection"] == nil, "hop-by-hop headers are not forwarded")
        #expect(r.json["path"] as? String == "/hello")
        #expect(r.json["query"] as? String == "x=1")
    }

    @Test func curlKeepAliveAndRoundRobin() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port, b.port])]))
        defer { d.terminate() }
        let url = "http://127.0.0.1:\(port)/x"
        let verbose = try runTool("curl", ["-sv", "-o", "/dev/null", url, url])
        #expect(verbose.output.contains("Re-using existing connection"), "client keep-alive: \(verbose.output)")
        let r = try runTool("curl", ["-s", "-w", "%header{x-backend}\n"] + Array(repeating: ["-o", "/dev/null", url], count: 4).flatMap { $0 })
        #expect(r.status == 0, "\(r.output)")
        let names = r.output.split(separator: "\n").filter { $0 == "a" || $0 == "b" }
        #expect(names == ["a", "b", "a", "b"] || names == ["b", "a", "b", "a"], "\(names) \(r.output)")
    }

    @Test func requestBodiesStreamIntact() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let file = d.directory.appendingPathComponent("body.bin")
        let payload = randomPayload(count: 3 * 1024 * 1024, seed: 9)
        try Data(payload).write(to: file)
        let expected = try runTool("sha256sum", [file.path]).output.split(separator: " ")[0]
        // Content-Length body (curl also sends Expect: 100-continue for this size).
        let r1 = try runTool("curl", ["-s", "--data-binary", "@\(file.path)", "http://127.0.0.1:\(port)/upload"])
        #expect(r1.output.contains("\"body_sha\": \"\(expected)\""), "\(r1.output.prefix(300))")
        // Chunked body.
        let r2 = try runTool("curl", ["-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file.path)",
                                      "http://127.0.0.1:\(port)/upload"])
        #expect(r2.output.contains("\"body_sha\": \"\(expected)\""), "\(r2.output.prefix(300))")
    }

    @Test func responseBodiesChunkedAndLarge() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        #expect(try get(port, "/chunked").text == "hello chunked world\n")
        let big = try get(port, "/big?n=5000000")
        #expect(big.body.count == 5_000_000)
    }

    @Test func pipelinedRequestsAnswerInOrder() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let raw = "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
            + "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let responses = HTTPClient.parse(try HTTPClient.exchange(port: port, raw))
        #expect(responses.map { $0.json["path"] as? String ?? "?" } == ["/one", "/two", "/three"])
    }

    @Test func webSocketUpgradeBecomesATunnel() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8))
        var head: [UInt8] = []
        while HTTPClient.find([13, 10, 13, 10], in: head, from: 0) == nil {
            head += try TestSocket.receive(fd, count: 1)
        }
        #expect(String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101"))
        let payload = randomPayload(count: 200_000, seed: 3)
        #expect(fnv1a(try echoRoundTrip(fd, payload)) == fnv1a(payload))
    }

    @Test func sluicesOwnErrors() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let deadPort = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(
            port: port, groups: [("app", [a.port]), ("dead", [deadPort]), ("empty", [])],
            listener: ["max_request_body: 1000", "response_timeout: 500ms",
                       "rules:",
                       "  - { priority: 1, when: { path: [\"/dead\"] }, then: { forward: dead } }",
                       "  - { priority: 2, when: { path: [\"/empty\"] }, then: { forward: empty } }"]))
        defer { d.terminate() }
        #expect(try get(port, "/" + String(repeating: "a", count: 17_000)).status == 414)
        #expect(try get(port, "/", headers: ["X-Big: " + String(repeating: "b", count: 70_000)]).status == 431)
        #expect(try HTTPClient.request(port: port, "BAD\r\n\r\n").status == 400)
        #expect(try HTTPClient.request(port: port,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n").status == 413)
        let chunk = String(repeating: "c", count: 2000)
        let chunked = try HTTPClient.exchange(port: port, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(chunk.count, radix: 16) + "\r\n" + chunk + "\r\n0\r\n\r\n")
        #expect(!HTTPClient.parse(chunked).contains { $0.status == 200 },
                "a chunked body over max_request_body is cut off, never answered as whole")
        #expect(try get(port, "/dead").status == 502)
        #expect(try get(port, "/empty").status == 503)
        #expect(try get(port, "/slow?ms=3000").status == 504)
    }

    @Test func idempotentRequestsAreRetriedOnlyWhenAllowed() throws {
        let dying = try TCPBackend(mode: .closeAfterRead)
        let good = try HTTPBackend(name: "good")
        for retry in [false, true] {
            let port = try TestSocket.freePort()
            let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [dying.port, good.port])],
                                                        listener: ["retry_idempotent: \(retry)"]))
            defer { d.terminate() }
            // Round robin starts with the first target: the one that dies.
            let r = try get(port, "/item")
            #expect(r.status == (retry ? 200 : 502), "retry_idempotent \(retry)")
            if retry {
                #expect(r.header("x-backend") == "good")
                let post = try HTTPClient.request(port: port,
                    "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
                let second = try get(port, "/again")
                #expect([post.status, second.status].sorted() == [200, 502], "a POST is never replayed")
            }
        }
    }

    @Test func slowlorisGets408() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])],
                                                    listener: ["header_timeout: 500ms"]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n".utf8))
        let r = HTTPClient.parse(try TestSocket.receiveAll(fd))
        #expect(r.first?.status == 408)
        #expect(try a.stats().count == 0, "the partial request never reached the target")
    }
}
