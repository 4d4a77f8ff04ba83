#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import SluiceControl

@Suite("Control server over a Unix socket", .serialized)
struct ControlServerTests {
    @Test func statusAnswersJSONWithSnakeCaseKeys() throws {
        let h = try Harness()
        defer { h.finish() }
        let r = try h.client().request("GET", "/v1/status")
        #expect(r.status == 200)
        #expect(r.headers["content-type"] == "application/json")
        let object = try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any]
        #expect(object["uptime_seconds"] as? Double == 12.5)
        #expect(object["plan_generation"] as? Int == 7)
        #expect(object["config_hash"] as? String == "abc123")
        #expect(try r.json(StatusInfo.self) == h.backend.status())
    }

    @Test func nodesAnswersTheFleetWithSnakeCaseKeys() throws {
        let h = try Harness()
        defer { h.finish() }
        let r = try h.client().request("GET", "/v1/nodes")
        #expect(r.status == 200)
        let object = try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any]
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        #expect(nodes.count == 1)
        #expect(nodes.first?["name"] as? String == "lb-a1")
        #expect(nodes.first?["plan_generation"] as? Int == 7)
        #expect(try r.json(NodesInfo.self) == NodesInfo(nodes: h.backend.nodes()))
        #expect(try h.client().request("POST", "/v1/nodes").status == 405)
    }

    @Test func socketIsCreatedWithMode0660InANewDirectory() throws {
        let h = try Harness()
        defer { h.finish() }
        var info = stat()
        #expect(stat(h.socketPath, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o660)
    }

    @Test func groupsAndOneGroup() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        let all = try c.request("GET", "/v1/target-groups")
        #expect(all.status == 200)
        let groups = try all.json([GroupInfo].self)
        #expect(groups.map(\.name) == ["web"])
        #expect(all.text.contains("\"protocol\":\"http\""))
        #expect(all.text.contains("\"static\":true"))
        #expect(all.text.contains("\"in_flight\":0"))
        let one = try c.request("GET", "/v1/target-groups/web")
        #expect(one.status == 200)
        #expect(try one.json(GroupInfo.self).targets.first?.address == "10.0.0.1:8080")
        let missing = try c.request("GET", "/v1/target-groups/nope")
        #expect(missing.status == 404)
        #expect(try missing.json(APIErrorBody.self).error.code == "not_found")
    }

    @Test func registerIsIdempotent201Then200() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        let body = #"{"address":"10.0.0.5:8080","zone":"zone-b","weight":2}"#
        let first = try c.request("POST", "/v1/target-groups/web/targets", body: body)
        #expect(first.status == 201)
        let target = try first.json(TargetInfo.self)
        #expect(target.address == "10.0.0.5:8080" && target.zone == "zone-b" && target.weight == 2)
        #expect(target.registeredAt == "2025-01-01T00:00:00.000Z")
        let again = try c.request("POST", "/v1/target-groups/web/targets", body: body)
        #expect(again.status == 200)
    }

    @Test func registerErrors() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        let bad = try c.request("POST", "/v1/target-groups/web/targets", body: "{not json")
        #expect(bad.status == 400)
        #expect(try bad.json(APIErrorBody.self).error.code == "bad_request")
        let noAddress = try c.request("POST", "/v1/target-groups/web/targets", body: #"{"zone":"a"}"#)
        #expect(noAddress.status == 400)
        #expect(try noAddress.json(APIErrorBody.self).error.message.contains("address"))
        let empty = try c.request("POST", "/v1/target-groups/web/targets")
        #expect(empty.status == 400)
        let conflict = try c.request("POST", "/v1/target-groups/web/targets", body: #"{"address":"1.2.3.4:80","weight":99}"#)
        #expect(conflict.status == 409)
        #expect(try conflict.json(APIErrorBody.self) == APIErrorBody(code: "conflict", message: "weight 99 is cursed"))
        let noGroup = try c.request("POST", "/v1/target-groups/nope/targets", body: #"{"address":"1.2.3.4:80"}"#)
        #expect(noGroup.status == 404)
    }

    @Test func deregisterDecodesPercentEncodedIPv6Address() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        #expect(try c.request("POST", "/v1/target-groups/web/targets", body: #"{"address":"[::1]:80"}"#).status == 201)
        let r = try c.request("DELETE", "/v1/target-groups/web/targets/%5B%3A%3A1%5D%3A80")
        #expect(r.status == 200)
        let t = try r.json(TargetInfo.self)
        #expect(t.address == "[::1]:80" && t.state == "draining")
        #expect(try c.request("DELETE", "/v1/target-groups/web/targets/10.9.9.9:1").status == 404)
        #expect(try c.request("DELETE", "/v1/target-groups/web/targets/%ZZ").status == 400)
    }

    @Test func deregisterWaitBlocksUntilTheBackendReturns() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        try c.send("DELETE", "/v1/target-groups/web/targets/10.0.0.1:8080?wait=true&timeout=5m")
        #expect(h.backend.deregisterStarted.wait(timeout: .now() + 5) == .success)
        #expect(!c.hasData(within: 300), "answered before draining ended")
        #expect(h.backend.lastTimeout.withLock { $0 } == 300_000_000_000)
        h.backend.release.signal()
        let r = try c.readResponse()
        #expect(r.status == 200)
        #expect(try r.json(TargetInfo.self).state == "drained")
        let badTimeout = try c.request("DELETE", "/v1/target-groups/web/targets/10.0.0.1:8080?wait=true&timeout=soon")
        #expect(badTimeout.status == 400)
    }

    @Test func patchChangesWeightAndZone() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        let r = try c.request("PATCH", "/v1/target-groups/web/targets/10.0.0.1:8080", body: #"{"weight":5,"zone":"zone-c"}"#)
        #expect(r.status == 200)
        let t = try r.json(TargetInfo.self)
        #expect(t.weight == 5 && t.zone == "zone-c")
        #expect(try c.request("PATCH", "/v1/target-groups/web/targets/10.0.0.1:8080", body: "{}").status == 400)
        #expect(try c.request("PATCH", "/v1/target-groups/web/targets/10.0.0.1:8080", body: #"{"weight":-1}"#).status == 400)
        #expect(try c.request("PATCH", "/v1/target-groups/web/targets/1.1.1.1:1", body: #"{"weight":1}"#).status == 404)
    }

    @Test func reloadSuccessAndFailure() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        let ok = try c.request("POST", "/v1/reload")
        #expect(ok.status == 200)
        #expect(try ok.json(ReloadResult.self) == ReloadResult(ok: true, generation: 8))
        h.backend.reloadOK.withLock { $0 = false }
        let failed = try c.request("POST", "/v1/reload")
        #expect(failed.status == 409)
        #expect(try failed.json(ReloadResult.self).errors == ["line 3: bad key"])
        #expect(try failed.json(APIErrorBody.self).error.code == "reload_failed")
    }

    @Test func metricsIsPrometheusText() throws {
        let h = try Harness()
        defer { h.finish() }
        let r = try h.client().request("GET", "/metrics")
        #expect(r.status == 200)
        #expect(r.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(r.text.contains("sluice_up 1"))
    }

    @Test func unknownRoutesAre404AndWrongMethods405() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        for path in ["/", "/v2/status", "/v1/nothing", "/v1/target-groups/web/other", "/v1/target-groups/web/targets/a/b"] {
            let r = try c.request("GET", path)
            #expect(r.status == 404, "\(path)")
            #expect(try r.json(APIErrorBody.self).error.code == "not_found")
        }
        for (method, path) in [("POST", "/v1/status"), ("DELETE", "/v1/target-groups"), ("GET", "/v1/reload"),
                               ("GET", "/v1/target-groups/web/targets"), ("PUT", "/v1/target-groups/web/targets/x"),
                               ("POST", "/metrics")] {
            let r = try c.request(method, path)
            #expect(r.status == 405, "\(method) \(path)")
            #expect(try r.json(APIErrorBody.self).error.code == "method_not_allowed")
        }
    }

    @Test func keepAliveServesManyRequestsAndConnectionCloseEndsIt() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        for _ in 0..<5 { #expect(try c.request("GET", "/v1/status").status == 200) }
        let last = try c.request("GET", "/v1/status", headers: ["Connection: close"])
        #expect(last.headers["connection"] == "close")
        #expect(try ControlSocket.read(c.fd).isEmpty)
    }

    @Test func oversizedBodyIs413() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        try ControlSocket.writeAll(c.fd, Array("POST /v1/reload HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n".utf8))
        let r = try c.readResponse()
        #expect(r.status == 413)
        #expect(r.headers["connection"] == "close")
    }

    @Test func eventsStreamPublishedEventsAsNDJSONWithGroupFilter() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        try c.send("GET", "/v1/events?group=web")
        let (status, headers) = try c.readHead()
        #expect(status == 200)
        #expect(headers["transfer-encoding"] == "chunked")
        #expect(headers["content-type"] == "application/x-ndjson")
        h.events.publish(ControlEvent(kind: .registration, group: "api", target: "1.1.1.1:1"))
        h.events.publish(ControlEvent(time: "2025-01-02T03:04:05.678Z", kind: .targetState, group: "web",
                                      target: "10.0.0.1:8080", state: "unhealthy", reason: "connect_refused"))
        h.events.publish(ControlEvent(kind: .failOpen, group: "web"))
        let first = try #require(try c.readChunk())
        #expect(first.last == UInt8(ascii: "\n"))
        let event = try JSONDecoder().decode(ControlEvent.self, from: Data(first))
        #expect(event.kind == .targetState && event.target == "10.0.0.1:8080" && event.reason == "connect_refused")
        #expect(String(decoding: first, as: UTF8.self).contains("\"type\":\"target_state\""))
        let second = try JSONDecoder().decode(ControlEvent.self, from: Data(try #require(try c.readChunk())))
        #expect(second.type == "fail_open")
        #expect(h.events.subscriberCount == 1)
    }

    @Test func eventStreamEndsWhenTheClientLeaves() throws {
        let h = try Harness()
        defer { h.finish() }
        do {
            let c = try h.client()
            try c.send("GET", "/v1/events")
            _ = try c.readHead()
            #expect(h.events.subscriberCount == 1)
        }
        let deadline = Date().addingTimeInterval(5)
        while h.events.subscriberCount > 0 && Date() < deadline { usleep(20_000) }
        #expect(h.events.subscriberCount == 0)
    }

    @Test func stopUnlinksTheSocketAndRestartReplacesAStaleOne() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/c.sock"
        let backend = FakeBackend()
        let first = ControlServer(socketPath: path, backend: backend, events: EventBus(), log: { _ in })
        try first.start()
        // A second server on a live socket refuses to steal it.
        let rival = ControlServer(socketPath: path, backend: backend, events: EventBus(), log: { _ in })
        #expect(throws: ControlServerError.self) { try rival.start() }
        first.stop()
        #expect(access(path, F_OK) != 0)

        // A stale socket (bound, nobody listening) is replaced.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = ControlSocket.withUnixAddress(path) { bind(stale, $0, $1) }
        close(stale)
        #expect(access(path, F_OK) == 0)
        let second = ControlServer(socketPath: path, backend: backend, events: EventBus(), log: { _ in })
        try second.start()
        defer { second.stop() }
        #expect(try RawClient(unixPath: path).request("GET", "/v1/status").status == 200)

        // A regular file at the path is never deleted.
        let filePath = dir.path + "/file.sock"
        #expect(FileManager.default.createFile(atPath: filePath, contents: Data("x".utf8)))
        let third = ControlServer(socketPath: filePath, backend: backend, events: EventBus(), log: { _ in })
        #expect(throws: ControlServerError.self) { try third.start() }
        #expect(access(filePath, F_OK) == 0)
    }

    @Test func peerCredentialDecision() {
        #expect(PeerCredentials.isAllowed(peerUID: 0, peerGroups: [0], ourEUID: 998, socketGroup: 998, allowedGroup: nil))
        #expect(PeerCredentials.isAllowed(peerUID: 998, peerGroups: [5], ourEUID: 998, socketGroup: 998, allowedGroup: nil))
        #expect(PeerCredentials.isAllowed(peerUID: 1000, peerGroups: [1000, 998], ourEUID: 998, socketGroup: 998, allowedGroup: nil))
        #expect(PeerCredentials.isAllowed(peerUID: 1000, peerGroups: [1000, 42], ourEUID: 998, socketGroup: 998, allowedGroup: 42))
        #expect(!PeerCredentials.isAllowed(peerUID: 1000, peerGroups: [1000], ourEUID: 998, socketGroup: 998, allowedGroup: 42))
        #expect(!PeerCredentials.isAllowed(peerUID: 1000, peerGroups: [], ourEUID: 998, socketGroup: nil, allowedGroup: nil))
        // Our own pid's supplementary groups are readable from /proc.
        _ = PeerCredentials.supplementaryGroups(pid: getpid())
        #expect(PeerCredentials.supplementaryGroups(pid: -1) == [])
    }

    @Test func connectingAsOurselvesPassesTheCredentialCheck() throws {
        let h = try Harness()
        defer { h.finish() }
        let c = try h.client()
        let peer = try #require(ControlSocket.peerCredentials(c.fd))
        #expect(peer.uid == geteuid())
        #expect(try c.request("GET", "/v1/status").status == 200)
    }
}

@Suite("Metrics TCP listener", .serialized)
struct MetricsServerTests {
    @Test func servesMetricsAndNothingElse() throws {
        let server = MetricsServer(address: "127.0.0.1", port: 0, backend: FakeBackend())
        try server.start()
        defer { server.stop() }
        #expect(server.port != 0)
        let ok = try RawClient(tcpPort: server.port).request("GET", "/metrics")
        #expect(ok.status == 200)
        #expect(ok.headers["connection"] == "close")
        #expect(ok.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(ok.text.contains("sluice_up 1"))
        let other = try RawClient(tcpPort: server.port).request("GET", "/v1/status")
        #expect(other.status == 404)
    }
}
