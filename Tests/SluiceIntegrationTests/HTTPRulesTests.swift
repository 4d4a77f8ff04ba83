import Foundation
import SluiceTestSupport
import Testing

/// Listener rules, actions and request balancing through the real daemon.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HTTPRulesTests {
    @Test func rulesRouteByEveryConditionInPriorityOrder() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let c = try HTTPBackend(name: "c")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(
            port: port, groups: [("ga", [a.port]), ("gb", [b.port]), ("gc", [c.port])],
            listener: [
                "rules:",
                "  - { priority: 30, when: { path: [\"/api/*\"] }, then: { forward: gb } }",
                "  - { priority: 10, when: { host: [\"*.example.com\"], path: [\"/api/v?\"] }, then: { forward: gc } }",
                "  - { priority: 40, when: { method: [DELETE] }, then: { forward: gc } }",
                "  - { priority: 50, when: { header: { x-canary: [\"yes\", \"tr*\"] } }, then: { forward: gc } }",
                "  - { priority: 60, when: { query: { v: [\"2 x\"] } }, then: { forward: gc } }",
                "  - { priority: 70, when: { source: [\"10.0.0.0/8\"] }, then: { forward: gc } }",
                "  - { priority: 80, when: { path: [\"/ping\"] }, then: { respond: { status: 200, content_type: text/plain, body: \"pong\\n\" } } }",
                "  - { priority: 90, when: { path: [\"/old/*\"] }, then: { redirect: { status: 301, path: \"/new/#{path}\" } } }",
            ]))
        defer { d.terminate() }
        func backend(_ path: String, method: String = "GET", host: String = "test.local", headers: [String] = []) throws -> String {
            let extra = headers.map { $0 + "\r\n" }.joined()
            let r = try HTTPClient.request(port: port, "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n\(extra)Connection: close\r\n\r\n")
            return r.header("x-backend") ?? "status \(r.status)"
        }
        #expect(try backend("/other") == "a")
        #expect(try backend("/api/x") == "b")
        #expect(try backend("/api/v2", host: "Shop.Example.com:\(port)") == "c", "priority 10 wins, host case-insensitive")
        #expect(try backend("/api/v22", host: "shop.example.com") == "b", "? is one character")
        #expect(try backend("/x", method: "DELETE") == "c")
        #expect(try backend("/x", headers: ["X-Canary: TRUE"]) == "c")
        #expect(try backend("/x", headers: ["X-Canary: no"]) == "a")
        #expect(try backend("/x?v=2%20x") == "c", "query values are percent-decoded")
        #expect(try backend("/x?v=2+x") == "c")
        #expect(try backend("/x?v=3") == "a")
        let pong = try get(port, "/ping")
        #expect(pong.status == 200 && pong.text == "pong\n" && pong.header("content-type") == "text/plain")
        let moved = try get(port, "/old/a/b?q=1")
        #expect(moved.status == 301)
        #expect(moved.header("location") == "http://test.local:\(port)/new/old/a/b?q=1")
        #expect(try a.stats().paths.allSatisfy { !$0.contains("/ping") && !$0.contains("/old") })
    }

    @Test func weightedForwardSplitsByWeight() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let port = try TestSocket.freePort()
        var yaml = httpConfig(port: port, groups: [("ga", [a.port]), ("gb", [b.port])])
        yaml = yaml.replacingOccurrences(of: "default: { forward: ga }",
                                         with: "default: { forward: [ { group: ga, weight: 3 }, { group: gb, weight: 1 } ] }")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        var counts: [String: Int] = [:]
        for _ in 0..<40 { counts[try get(port, "/").header("x-backend") ?? "?", default: 0] += 1 }
        #expect(counts == ["a": 30, "b": 10])
    }

    @Test func stickinessCookiePinsATarget() throws {
        let a = try HTTPBackend(name: "a")
        let b = try HTTPBackend(name: "b")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port, b.port])],
                                                    group: ["stickiness: { cookie: SLUICE, duration: 1h }"]))
        defer { d.terminate() }
        let first = try get(port, "/")
        let setCookie = try #require(first.header("set-cookie"))
        #expect(setCookie.hasPrefix("SLUICE="))
        #expect(setCookie.contains("Max-Age=3600"))
        let cookie = String(setCookie.split(separator: ";")[0])
        for _ in 0..<6 {
            #expect(try get(port, "/", headers: ["Cookie: other=1; \(cookie)"]).header("x-backend") == first.header("x-backend"))
        }
    }

    @Test func headerHashKeepsAKeyOnOneTarget() throws {
        let backends = try (0..<3).map { try HTTPBackend(name: "t\($0)") }
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", backends.map(\.port))],
                                                    group: ["algorithm: header_hash", "hash_key: { header: X-User }"]))
        defer { d.terminate() }
        var seen = Set<String>()
        for user in 0..<30 {
            let first = try get(port, "/", headers: ["X-User: u\(user)"]).header("x-backend")
            #expect(try get(port, "/", headers: ["X-User: u\(user)"]).header("x-backend") == first)
            seen.insert(first ?? "?")
        }
        #expect(seen.count == 3, "keys spread over every target")
    }
}
