#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Testing

@testable import sluicectl

@Suite struct ControlClientTests {
    @Test func contentLengthAnswer() throws {
        let body = #"{"version":"0.1.0"}"#
        let server = try CannedServer(replies: [
            [bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len"),
             bytes("gth: \(body.utf8.count)\r\n\r\n{\"vers"), bytes("ion\":\"0.1.0\"}")]
        ])
        let answer = try ControlClient(socketPath: server.path).request(method: "GET", path: "/v1/status")
        #expect(answer.status == 200)
        #expect(String(decoding: answer.body, as: UTF8.self) == body)
        let request = try #require(server.received.first)
        #expect(request.hasPrefix("GET /v1/status HTTP/1.1\r\n"))
        #expect(request.contains("\r\nHost: sluiced\r\n"))
        #expect(request.contains("\r\nConnection: close\r\n"))
    }

    @Test func postsJSONBody() throws {
        let server = try CannedServer(replies: [[bytes("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")]])
        let body = Data(#"{"address":"[::1]:80"}"#.utf8)
        let answer = try ControlClient(socketPath: server.path)
            .request(method: "POST", path: "/v1/target-groups/web/targets", body: body)
        #expect(answer.status == 201)
        let request = try #require(server.received.first)
        #expect(request.contains("Content-Length: \(body.count)\r\n"))
        #expect(request.contains("Content-Type: application/json\r\n"))
        #expect(request.hasSuffix("\r\n\r\n" + #"{"address":"[::1]:80"}"#))
    }

    @Test func chunkedAnswer() throws {
        let server = try CannedServer(replies: [
            [bytes("HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), bytes("lo\r\n6;ext=1\r\n world\r"),
             bytes("\n0\r\nX-Trailer: 1\r\n\r\n")]
        ])
        let answer = try ControlClient(socketPath: server.path).request(method: "POST", path: "/v1/reload")
        #expect(answer.status == 409)
        #expect(String(decoding: answer.body, as: UTF8.self) == "hello world")
        #expect(try #require(server.received.first).contains("Content-Length: 0\r\n"))
    }

    @Test func bodyUntilClose() throws {
        let server = try CannedServer(replies: [[bytes("HTTP/1.1 500 Oops\r\n\r\npart one, "), bytes("part two")]])
        let answer = try ControlClient(socketPath: server.path).request(method: "GET", path: "/v1/status")
        #expect(answer.status == 500)
        #expect(String(decoding: answer.body, as: UTF8.self) == "part one, part two")
    }

    @Test func streamsLinesAsTheyArrive() throws {
        let e1 = #"{"time":"2025-01-02T03:04:05.678Z","type":"registered","group":"web","target":"10.0.0.5:8080"}"#
        let e2 = #"{"time":"2025-01-02T03:04:06.000Z","type":"reload"}"#
        let stream = "\(e1)\n\(e2)\n"
        let cut = e1.utf8.count - 10
        let first = String(stream.utf8.prefix(cut))!
        let second = String(stream.utf8.dropFirst(cut))!
        let server = try CannedServer(replies: [
            [bytes("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"),
             bytes(String(first.utf8.count, radix: 16) + "\r\n" + first + "\r\n"),
             bytes(String(second.utf8.count, radix: 16) + "\r\n" + second + "\r\n"),
             bytes("0\r\n\r\n")]
        ])
        var lines: [String] = []
        let answer = try ControlClient(socketPath: server.path, timeout: nil)
            .streamLines(path: "/v1/events?group=web") { lines.append(String(decoding: $0, as: UTF8.self)) }
        #expect(answer.status == 200)
        #expect(lines == [e1, e2])
        #expect(try #require(server.received.first).hasPrefix("GET /v1/events?group=web HTTP/1.1\r\n"))
    }

    @Test func streamRefusalReturnsTheBody() throws {
        let body = #"{"error":{"code":"not_found","message":"no group x"}}"#
        let server = try CannedServer(replies: [[bytes("HTTP/1.1 404 Not Found\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")]])
        var lines = 0
        let answer = try ControlClient(socketPath: server.path, timeout: nil).streamLines(path: "/v1/events") { _ in lines += 1 }
        #expect(answer.status == 404)
        #expect(lines == 0)
        #expect(CtlFailure.refusal(status: 404, body: Array(answer.body))
            == .refused(status: 404, code: "not_found", message: "no group x"))
    }

    @Test func missingSocketIsUnreachable() {
        let path = "/nonexistent/dir/control.sock"
        #expect(throws: ClientError.unreachable(socket: path, reason: "No such file or directory")) {
            try ControlClient(socketPath: path).request(method: "GET", path: "/v1/status")
        }
    }

    @Test func socketNobodyListensOnIsUnreachable() throws {
        // Bound but not listening: connect is refused.
        let path = FileManager.default.temporaryDirectory.path + "/sluicectl-refused-\(getpid()).sock"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0)
        #expect(throws: ClientError.unreachable(socket: path, reason: "Connection refused")) {
            try ControlClient(socketPath: path).request(method: "GET", path: "/v1/status")
        }
    }

    @Test func tooLongPathIsUnreachable() {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        do {
            _ = try ControlClient(socketPath: path).request(method: "GET", path: "/v1/status")
            Issue.record("expected a failure")
        } catch {
            guard case .unreachable(let socket, _) = error else { Issue.record("got \(error)"); return }
            #expect(socket == path)
        }
    }

    @Test func silentDaemonTimesOut() throws {
        let server = try CannedServer(replies: [nil])
        let start = ContinuousClock.now
        #expect(throws: ClientError.io(socket: server.path, reason: "timed out waiting for the daemon")) {
            try ControlClient(socketPath: server.path, timeout: .milliseconds(200)).request(method: "GET", path: "/v1/status")
        }
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func closeWithoutAnswer() throws {
        let server = try CannedServer(replies: [[]])
        #expect(throws: ClientError.io(socket: server.path, reason: "the daemon closed the connection without answering")) {
            try ControlClient(socketPath: server.path).request(method: "GET", path: "/v1/status")
        }
    }

    @Test func truncatedAnswer() throws {
        let server = try CannedServer(replies: [[bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")]])
        #expect(throws: ClientError.io(socket: server.path, reason: "the daemon closed the connection mid-answer")) {
            try ControlClient(socketPath: server.path).request(method: "GET", path: "/v1/status")
        }
    }

    @Test func garbageAnswer() throws {
        let server = try CannedServer(replies: [[bytes("SSH-2.0-OpenSSH\r\n\r\n")]])
        do {
            _ = try ControlClient(socketPath: server.path).request(method: "GET", path: "/v1/status")
            Issue.record("expected a failure")
        } catch {
            guard case .badResponse = error else { Issue.record("got \(error)"); return }
        }
    }

    @Test func unreachableMessageNamesTheSocket() {
        let error = ClientError.unreachable(socket: "/run/sluice/control.sock", reason: "Permission denied")
        #expect(error.description.contains("/run/sluice/control.sock"))
        #expect(error.description.contains("Permission denied"))
        #expect(ExitStatus.code(for: CtlFailure.unreachable(error)) == 3)
        #expect(ExitStatus.code(for: error) == 3)
    }
}
