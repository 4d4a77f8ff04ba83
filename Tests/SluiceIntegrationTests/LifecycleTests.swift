import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Starting, checking and stopping the real daemon.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct LifecycleTests {
    @Test func sigtermLetsAnOpenTransferFinishThenExitsZero() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)]))
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        let first = randomPayload(count: 1024 * 1024, seed: 1)
        try TestSocket.sendAll(fd, first)
        #expect(fnv1a(try TestSocket.receive(fd, count: first.count)) == fnv1a(first))

        d.send(signal: SIGTERM)
        // The daemon must keep this connection working until it ends.
        let rest = randomPayload(count: 4 * 1024 * 1024, seed: 2)
        let echoed = try echoRoundTrip(fd, rest)
        #expect(fnv1a(echoed) == fnv1a(rest))
        #expect(d.waitForExit(seconds: 10) == 0)
        #expect(d.log.contains("stopping"))
        #expect(throws: TestSocket.Failure.self, "no longer listening") { _ = try TestSocket.connect(port: port) }
    }

    @Test func sigintStopsAnIdleDaemon() throws {
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:9", 1)]))
        defer { d.terminate() }
        d.send(signal: SIGINT)
        #expect(d.waitForExit(seconds: 10) == 0)
    }

    @Test func sighupDoesNotKill() throws {
        let echo = try TCPBackend(mode: .echo)
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(echo.port)", 1)]))
        defer { d.terminate() }
        d.send(signal: SIGHUP)
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        #expect(try echoRoundTrip(fd, [1, 2, 3]) == [1, 2, 3])
        #expect(d.isRunning)
    }

    @Test func graceEndsLingeringConnections() throws {
        let hold = try TCPBackend(mode: .hold)
        let port = try TestSocket.freePort()
        let yaml = tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:\(hold.port)", 1)])
            .replacingOccurrences(of: "shutdown_grace: 10s", with: "shutdown_grace: 500ms")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        let fd = try TestSocket.connect(port: port)
        defer { close(fd) }
        try waitUntil("the target holds the connection") { hold.acceptedCount == 1 }
        d.send(signal: SIGTERM)
        #expect(d.waitForExit(seconds: 10) == 0)
        #expect(TestSocket.waitForClose(fd))
    }

    @Test func addressInUseIsReportedWithTheAddress() throws {
        let (busy, port) = try TestSocket.listen()
        defer { close(busy) }
        let d = try SluicedProcess(yaml: tcpConfig(listen: "127.0.0.1:\(port)", targets: [("127.0.0.1:9", 1)]),
                                   waitForReady: false)
        defer { d.terminate() }
        #expect(d.waitForExit(seconds: 10) == 1)
        #expect(d.log.contains("127.0.0.1:\(port)"))
        #expect(d.log.contains("already in use"))
    }

    @Test func checkAcceptsAValidFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ok.yaml").path
        try tcpConfig(listen: "127.0.0.1:1", targets: [("127.0.0.1:2", 1)]).write(toFile: path, atomically: true, encoding: .utf8)
        let r = try SluicedProcess.run(["--check", "--config", path])
        #expect(r.status == 0, "\(r.output)")
    }

    @Test func checkRejectsABadFileWithPosition() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.yaml").path
        let yaml = tcpConfig(listen: "127.0.0.1:1", targets: [("127.0.0.1:2", 1000)])
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try SluicedProcess.run(["--check", "--config", path])
        #expect(r.status == 1)
        let line = yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("1000") }! + 1
        #expect(r.output.contains("bad.yaml:\(line):"), "\(r.output)")
        #expect(r.output.contains("target_groups[0].targets[0].weight"), "\(r.output)")
    }

    @Test func theShippedExampleConfigIsValid() throws {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        let path = dir.appendingPathComponent("etc/sluice/sluice.yaml").path
        // Its https listener names certs/demo.pem beside the file (`make run` makes them):
        // check a copy with a real certificate there (--check loads it into OpenSSL).
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: copy.appendingPathComponent("certs"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.copyItem(atPath: try TestCerts.path("b.pem"), toPath: copy.appendingPathComponent("certs/demo.pem").path)
        try FileManager.default.copyItem(atPath: try TestCerts.path("b.key"), toPath: copy.appendingPathComponent("certs/demo.key").path)
        try FileManager.default.copyItem(atPath: path, toPath: copy.appendingPathComponent("sluice.yaml").path)
        let r = try SluicedProcess.run(["--check", "--config", copy.appendingPathComponent("sluice.yaml").path])
        #expect(r.status == 0, "\(r.output)")
    }

    /// Every key of SPEC §2's example loads (the certificates are the test ones).
    @Test func checkAcceptsTheSpecExample() throws {
        let text = try String(contentsOf: fixturesDirectory.appendingPathComponent("spec-example.yaml"), encoding: .utf8)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spec-example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sluice.yaml").path
        try text.replacingOccurrences(of: "$CERTS", with: try TestCerts.directory())
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try SluicedProcess.run(["--check", "--config", path])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("ok (4 listeners, 4 target groups)"), "\(r.output)")
    }
}
