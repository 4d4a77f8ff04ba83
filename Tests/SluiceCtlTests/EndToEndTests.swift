#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import SluiceControl
import Synchronization
import Testing

/// `sluicectl` next to the test bundle, where SwiftPM puts the products.
let sluicectlBinary: String? = {
    guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The bundle may be a directory (…/X.xctest/…) on some layouts; walk up until the binary shows.
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("sluicectl").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir.deleteLastPathComponent()
    }
    return nil
}()

/// The built `sluicectl` binary against the real `ControlServer` with an in-memory backend: what an
/// operator sees (stdout, stderr, exit code).
@Suite(.serialized, .enabled(if: sluicectlBinary != nil, "the sluicectl binary is not built"))
struct EndToEndTests {
    static var binary: String? { sluicectlBinary }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary!)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SLUICE_SOCKET")
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// A daemon with one group `web` holding one static target.
    final class FakeBackend: ControlBackend {
        let state = Mutex<[String: GroupInfo]>([
            "web": GroupInfo(
                name: "web", proto: "http", algorithm: "round_robin", crossZone: "true", failOpen: false,
                targets: [TargetInfo(address: "10.0.0.5:8080", zone: "zone-a", weight: 1, state: "healthy", isStatic: true)])
        ])
        let lastTimeout = Mutex<UInt64?>(nil)

        func status() -> StatusInfo {
            StatusInfo(
                version: "9.9.9", uptimeSeconds: 61, zone: "zone-a", workers: 2, configFile: "/etc/sluice/sluice.yaml",
                configHash: "abc", connectionsActive: 1, connectionsTotal: 2, planGeneration: 3)
        }
        func nodes() -> [NodeInfo] {
            [NodeInfo(name: "lb-a1", zone: "zone-a", version: "0.1.0", planGeneration: 3, started: "2025-01-01T00:00:00.000Z"),
             NodeInfo(name: "lb-b1", zone: "zone-b", version: "0.1.0", planGeneration: 4, started: "2025-01-01T00:00:01.000Z")]
        }
        func groups() -> [GroupInfo] { state.withLock { $0.values.sorted { $0.name < $1.name } } }
        func group(_ name: String) -> GroupInfo? { state.withLock { $0[name] } }
        func register(group: String, _ r: RegisterRequest) throws(ControlError) -> (created: Bool, target: TargetInfo) {
            let result: Result<(Bool, TargetInfo), ControlError> = state.withLock { groups in
                guard var g = groups[group] else { return .failure(.notFound("target group \"\(group)\" does not exist")) }
                if let existing = g.targets.first(where: { $0.address == r.address }) { return .success((false, existing)) }
                let t = TargetInfo(address: r.address, zone: r.zone ?? "zone-a", weight: r.weight ?? 1, state: "unknown")
                g.targets.append(t)
                groups[group] = g
                return .success((true, t))
            }
            return try result.get()
        }
        func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlError) -> TargetInfo {
            lastTimeout.withLock { $0 = timeout }
            let result: Result<TargetInfo, ControlError> = state.withLock { groups in
                guard var g = groups[group], let i = g.targets.firstIndex(where: { $0.address == address }) else {
                    return .failure(.notFound("no target \(address) in \(group)"))
                }
                g.targets[i].state = wait ? "drained" : "draining"
                let t = g.targets[i]
                if wait { g.targets.remove(at: i) }
                groups[group] = g
                return .success(t)
            }
            return try result.get()
        }
        func update(group: String, address: String, _ r: UpdateRequest) throws(ControlError) -> TargetInfo {
            throw .conflict("static target \(address) is owned by the config file")
        }
        func reload() -> ReloadResult {
            ReloadResult(ok: false, generation: 3, errors: ["sluice.yaml:4:3: listeners[0].bind: expected an address"])
        }
        func metrics() -> String { "" }
    }

    let backend = FakeBackend()
    let events = EventBus()
    let server: ControlServer
    let socket: String

    init() throws {
        socket = FileManager.default.temporaryDirectory.path + "/sluicectl-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        server = ControlServer(socketPath: socket, backend: backend, events: events, log: { _ in })
        try server.start()
    }

    @Test func statusAndList() throws {
        let status = try Self.run(["status", "--socket", socket])
        #expect(status.status == 0)
        #expect(status.stdout.contains("version:          9.9.9"))
        #expect(status.stdout.contains("uptime:           1m 1s"))

        let json = try Self.run(["status", "--socket", socket, "--json"])
        #expect(json.status == 0)
        #expect(json.stdout.hasPrefix("{\n  \"config_file\" : \"/etc/sluice/sluice.yaml\","))

        let list = try Self.run(["targets", "list"], environment: ["SLUICE_SOCKET": socket])
        #expect(list.status == 0)
        #expect(list.stdout == """
            GROUP  TARGET                  ZONE    WEIGHT  STATE    REASON  IN-FLIGHT
            web    10.0.0.5:8080 (static)  zone-a       1  healthy  -               0

            """)
        let nodes = try Self.run(["nodes", "--socket", socket])
        #expect(nodes.status == 0)
        #expect(nodes.stdout == """
            NAME   ZONE    VERSION  PLAN  STARTED
            lb-a1  zone-a  0.1.0       3  2025-01-01T00:00:00.000Z
            lb-b1  zone-b  0.1.0       4  2025-01-01T00:00:01.000Z

            """)
        let nodesJSON = try Self.run(["nodes", "--socket", socket, "--json"])
        #expect(nodesJSON.stdout.contains("\"plan_generation\" : 4"), "\(nodesJSON.stdout)")
        let missing = try Self.run(["targets", "list", "nope", "--socket", socket])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: not_found: target group \"nope\" does not exist\n")
        server.stop()
    }

    @Test func registerDeregisterIPv6() throws {
        let first = try Self.run(["targets", "register", "web", "[::1]:80", "--zone", "zone-b", "--weight", "5", "--socket", socket])
        #expect(first.status == 0)
        #expect(first.stdout == "registered: [::1]:80 in web: zone zone-b, weight 5, unknown\n")
        let again = try Self.run(["targets", "register", "web", "[::1]:80", "--socket", socket])
        #expect(again.stdout.hasPrefix("already registered: [::1]:80"))

        let drained = try Self.run(["targets", "deregister", "web", "[::1]:80", "--wait", "--timeout", "2m", "--socket", socket])
        #expect(drained.status == 0)
        #expect(drained.stdout == "drained: [::1]:80 in web: zone zone-b, weight 5, drained\n")
        #expect(backend.lastTimeout.withLock { $0 } == 120_000_000_000)

        let gone = try Self.run(["targets", "deregister", "web", "[::1]:80", "--socket", socket])
        #expect(gone.status == 1)
        #expect(gone.stderr == "error: not_found: no target [::1]:80 in web\n")

        let set = try Self.run(["targets", "set", "web", "10.0.0.5:8080", "--weight", "2", "--socket", socket])
        #expect(set.status == 1)
        #expect(set.stderr.hasPrefix("error: conflict: static target"))
        server.stop()
    }

    @Test func reloadFailureExits1() throws {
        let r = try Self.run(["reload", "--socket", socket])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("sluice.yaml:4:3: listeners[0].bind: expected an address"))
        let json = try Self.run(["reload", "--socket", socket, "--json"])
        #expect(json.status == 1)
        #expect(json.stdout.contains("\"ok\" : false"))
        server.stop()
    }

    @Test func eventsFollowUntilSIGINT() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = ["events", "--group", "web", "--json", "--socket", socket]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Watchdog: a follower that hangs must not hang the test run; it is gone well before this fires.
        let pid = process.processIdentifier
        let finished = Flag()
        defer { finished.value.store(true, ordering: .sequentiallyConsistent) }
        let watchdog = Thread {
            Thread.sleep(forTimeInterval: 10)
            if !finished.value.load(ordering: .sequentiallyConsistent) { kill(pid, SIGKILL) }
        }
        watchdog.start()
        // Wait for the subscription, then publish.
        let deadline = ContinuousClock.now + .seconds(5)
        while events.subscriberCount == 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        try #require(events.subscriberCount == 1)
        events.publish(ControlEvent(time: "2025-01-02T03:04:05.678Z", kind: .registration, group: "web", target: "10.0.0.9:80"))
        events.publish(ControlEvent(time: "2025-01-02T03:04:05.679Z", kind: .registration, group: "api", target: "10.0.0.8:80"))
        events.publish(ControlEvent(time: "2025-01-02T03:04:05.680Z", kind: .drained, group: "web", target: "10.0.0.9:80"))
        // Read the two lines of group web as they come.
        var text = ""
        let reader = out.fileHandleForReading
        while text.split(separator: "\n").count < 2 && ContinuousClock.now < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        kill(process.processIdentifier, SIGINT)
        let exitDeadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < exitDeadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("sluicectl events ignored SIGINT")
        }
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        // The bus gave the event an id; the rest is the event as published.
        let first = String(lines.first ?? "")
        #expect(first.hasPrefix(#"{"group":"web","id":""#))
        #expect(first.hasSuffix(#"","target":"10.0.0.9:80","time":"2025-01-02T03:04:05.678Z","type":"registration"}"#))
        #expect(lines.last?.contains(#""type":"drained""#) == true)
        server.stop()
    }

    @Test func unreachableAndUsage() throws {
        let gone = try Self.run(["targets", "list", "--socket", "/nonexistent"])
        #expect(gone.status == 3)
        #expect(gone.stderr.hasPrefix("error: cannot reach sluiced at /nonexistent: No such file or directory"))
        let bad = try Self.run(["targets", "register", "g", "bad-address", "--socket", socket])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("invalid address \"bad-address\""))
        for shell in ["bash", "zsh", "fish"] {
            let completion = try Self.run(["--generate-completion-script", shell])
            #expect(completion.status == 0)
            #expect(completion.stdout.contains("deregister"))
        }
        let help = try Self.run(["targets", "deregister", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("lifecycle hook"))
        server.stop()
    }
}
