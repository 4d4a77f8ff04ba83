import Foundation
import SluiceTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Event rules (SPEC §13) with the real daemon: webhooks to a real receiver
/// (Tests/Fixtures/webhook_receiver.py) that verifies signatures, fails on purpose, goes away and
/// comes back; exec delivery; dead letters; a SIGKILL with events pending.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct EventRulesTests {
    /// A state directory that outlives one daemon (restart tests), with the receiver's log and secret.
    final class Workspace {
        let path: String
        let listenPort: UInt16
        init() throws {
            listenPort = try TestSocket.freePort()
            path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-events-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path + "/state", withIntermediateDirectories: true)
            try "s3cret-key\n".write(toFile: path + "/secret", atomically: true, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var socket: String { path + "/control.sock" }
        var log: String { path + "/received.log" }
        var outboxes: String { path + "/state/events" }
    }

    /// A tcp listener in front of group `db` (no static targets) and the given `events:` block.
    static func config(_ w: Workspace, events: String) throws -> String {
        let port = w.listenPort
        var yaml = """
            node: { workers: 1, shutdown_grace: 5s }
            control: { socket: \(w.socket), state: \(w.path)/state/state.json }
            listeners:
              - { name: front, protocol: tcp, bind: "127.0.0.1:\(port)", default: { forward: db } }
            target_groups:
              - { name: db, protocol: tcp, health_check: off, deregistration_delay: 0s, targets: [] }

            """
        yaml += events
        return yaml
    }

    static func receiver(_ w: Workspace, port: UInt16 = 0, extra: [String] = []) throws -> FixtureProcess {
        try FixtureProcess(script: "webhook_receiver.py",
                           arguments: ["--port", "\(port)", "--log", w.log, "--secret-file", w.path + "/secret"] + extra)
    }

    /// Every request the receiver logged, in arrival order.
    static func received(_ w: Workspace) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: w.log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Targets of the events answered 200, in arrival order (duplicates kept).
    static func delivered(_ w: Workspace) -> [String] {
        received(w).filter { $0["answered"] as? String == "ok" }.compactMap { $0["target"] as? String }
    }

    /// Polls `condition` every 20 ms for up to `seconds`.
    static func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    static func ctl(_ w: Workspace, _ args: [String]) throws -> (status: Int32, output: String) {
        try runTool(sluicectlPath, args + ["--socket", w.socket])
    }

    static func register(_ w: Workspace, _ count: Int, from base: Int = 20000) throws -> [String] {
        var targets: [String] = []
        for i in 0..<count {
            let t = "127.0.0.1:\(base + i)"
            let r = try ctl(w, ["targets", "register", "db", t])
            #expect(r.status == 0, "\(r.output)")
            targets.append(t)
        }
        return targets
    }

    static func metric(_ w: Workspace, _ name: String) throws -> Double? {
        let text = try runTool("curl", ["-s", "--unix-socket", w.socket, "http://x/metrics"]).output
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// True when `seen` is `expected` in order, each possibly repeated (at least once, never out of order).
    static func inOrder(_ seen: [String], _ expected: [String]) -> Bool {
        var dedup: [String] = []
        for s in seen where dedup.last != s { dedup.append(s) }
        return dedup == expected
    }

    static func hookRules(port: UInt16, attempts: Int = 1000, types: String = "[registration]", secret: Bool = true,
                          group: Bool = true, w: Workspace) -> String {
        """
        events:
          rules:
            - name: hook
              match: { type: \(types)\(group ? ", group: [db]" : "") }
              deliver: { webhook: "http://127.0.0.1:\(port)/hooks/sluice"\(secret ? ", secret_file: \(w.path)/secret" : "") }
          retry: { attempts: \(attempts), backoff: 20ms, max_backoff: 200ms }

        """
    }

    @Test func deliversSignedEventsInOrder() throws {
        let w = try Workspace()
        let r = try Self.receiver(w)
        let d = try SluicedProcess(yaml: try Self.config(w, events: Self.hookRules(port: r.port, w: w)))
        defer { d.terminate() }
        let targets = try Self.register(w, 5)
        #expect(Self.waitUntil(20) { Self.delivered(w).count >= 5 }, "\(Self.received(w))")
        let got = Self.received(w)
        #expect(got.map { $0["target"] as? String ?? "" } == targets)
        for entry in got {
            #expect(entry["sig_ok"] as? Bool == true, "signature: \(entry)")
            #expect(entry["content_type"] as? String == "application/json")
            #expect(entry["path"] as? String == "/hooks/sluice")
            #expect(entry["type"] as? String == "registration")
            #expect(entry["id"] as? String != nil && entry["id"] as? String == entry["body_id"] as? String)
            // The body is the event exactly as GET /v1/events sends it: one compact object, keys sorted.
            let body = entry["body"] as? String ?? ""
            #expect(body.hasPrefix("{\"group\":\"db\",\"id\":") && !body.hasSuffix("\n"), "\(body)")
        }
        #expect(try Self.metric(w, "sluice_event_deliveries_total{rule=\"hook\",result=\"success\"}") == 5)
        #expect(try Self.metric(w, "sluice_event_outbox_length{rule=\"hook\"}") == 0)
        // Deregistrations are not matched by this rule.
        #expect(try Self.ctl(w, ["targets", "deregister", "db", targets[0]]).status == 0)
        #expect(try Self.ctl(w, ["targets", "register", "db", "127.0.0.1:30000"]).status == 0)
        #expect(Self.waitUntil(20) { Self.delivered(w).count >= 6 })
        #expect(Self.delivered(w) == targets + ["127.0.0.1:30000"])
        r.stop()
    }

    @Test func failingReceiverIsRetriedInOrder() throws {
        let w = try Workspace()
        // Every 2nd answer is cut short, every... (close mode), so about half the attempts fail.
        let r = try Self.receiver(w, extra: ["--fail-every", "2", "--fail-mode", "close"])
        let d = try SluicedProcess(yaml: try Self.config(w, events: Self.hookRules(port: r.port, w: w)))
        defer { d.terminate() }
        let targets = try Self.register(w, 8)
        #expect(Self.waitUntil(30) { Set(Self.delivered(w)).count >= 8 }, "\(Self.received(w))")
        #expect(Self.inOrder(Self.delivered(w), targets), "\(Self.delivered(w))")
        // Every attempt, failed or not, came in order: the next event waits for the current one.
        let attempts = Self.received(w).compactMap { $0["target"] as? String }
        #expect(Self.inOrder(attempts, targets), "\(attempts)")
        #expect(Self.received(w).contains { $0["answered"] as? String == "close" })
        let failures = try #require(try Self.metric(w, "sluice_event_deliveries_total{rule=\"hook\",result=\"failure\"}"))
        #expect(failures >= 4)
    }

    @Test func receiverAwayThenBackLosesNothing() throws {
        let w = try Workspace()
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: try Self.config(w, events: Self.hookRules(port: port, w: w)))
        defer { d.terminate() }
        let targets = try Self.register(w, 4)
        #expect(try Self.waitUntil(10) { (try Self.metric(w, "sluice_event_deliveries_total{rule=\"hook\",result=\"failure\"}") ?? 0) >= 2 })
        #expect(try Self.metric(w, "sluice_event_outbox_length{rule=\"hook\"}") == 4)
        let r = try Self.receiver(w, port: port)
        #expect(Self.waitUntil(20) { Self.delivered(w).count >= 4 }, "\(Self.received(w))")
        #expect(Self.delivered(w) == targets)
        // Goes away again mid-stream, comes back on the same port.
        r.stop()
        let more = try Self.register(w, 3, from: 21000)
        let r2 = try Self.receiver(w, port: port)
        #expect(Self.waitUntil(20) { Self.delivered(w).count >= 7 }, "\(Self.received(w))")
        #expect(Self.inOrder(Self.delivered(w), targets + more))
        #expect(try Self.waitUntil(5) { try Self.metric(w, "sluice_event_outbox_length{rule=\"hook\"}") == 0 })
        r2.stop()
    }

    @Test func sigkillWithEventsPendingThenRestartDeliversAll() throws {
        let w = try Workspace()
        let port = try TestSocket.freePort()
        let yaml = try Self.config(w, events: Self.hookRules(port: port, w: w))
        var targets: [String] = []
        do {
            let d = try SluicedProcess(yaml: yaml)
            defer { d.terminate() }
            // A receiver that delivers the first few, then goes away while more are published.
            let r = try Self.receiver(w, port: port)
            targets = try Self.register(w, 3)
            #expect(Self.waitUntil(20) { Self.delivered(w).count >= 3 })
            r.stop()
            targets += try Self.register(w, 12, from: 22000)
            d.send(signal: SIGKILL)
            #expect(d.waitForExit(seconds: 10) != nil)
        }
        let outbox = try FileManager.default.attributesOfItem(atPath: w.outboxes + "/hook.outbox")
        #expect((outbox[.size] as? Int ?? 0) > 0)
        let r = try Self.receiver(w, port: port)
        let d2 = try SluicedProcess(yaml: yaml)
        defer { d2.terminate() }
        #expect(Self.waitUntil(30) { Set(Self.delivered(w)).isSuperset(of: targets) }, "\(Self.delivered(w))")
        // Restored registrations may bring events of their own after these; the first 15 are in order.
        let seen = Self.delivered(w)
        var dedup: [String] = []
        for s in seen where dedup.last != s { dedup.append(s) }
        #expect(Array(dedup.prefix(targets.count)) == targets, "\(seen)")
        #expect(try Self.waitUntil(5) { try Self.metric(w, "sluice_event_outbox_length{rule=\"hook\"}") == 0 })
        r.stop()
    }

    @Test func deadLettersAndRedeliver() throws {
        let w = try Workspace()
        let port = try TestSocket.freePort()
        let failing = try Self.receiver(w, port: port, extra: ["--fail-every", "1"])
        let d = try SluicedProcess(yaml: try Self.config(w, events: Self.hookRules(port: port, attempts: 3, w: w)))
        defer { d.terminate() }
        let targets = try Self.register(w, 2)
        #expect(try Self.waitUntil(20) {
            (try Self.metric(w, "sluice_event_dead_letters{rule=\"hook\"}") ?? 0) >= 2
        })
        #expect(Self.received(w).count == 6, "3 attempts each: \(Self.received(w).count)")
        #expect(try Self.metric(w, "sluice_event_deliveries_total{rule=\"hook\",result=\"failure\"}") == 6)
        #expect(try Self.metric(w, "sluice_event_outbox_length{rule=\"hook\"}") == 0)
        let json = try Self.ctl(w, ["events", "failed", "--json"])
        #expect(json.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let failed = try #require(obj["failed"] as? [[String: Any]])
        #expect(failed.count == 2)
        #expect(failed.map { ($0["event"] as? [String: Any])?["target"] as? String ?? "" } == targets)
        for f in failed {
            #expect(f["rule"] as? String == "hook" && f["attempts"] as? Int == 3 && f["error"] as? String == "HTTP 500")
            #expect(f["failed_at"] as? String != nil && f["id"] as? String == (f["event"] as? [String: Any])?["id"] as? String)
        }
        let table = try Self.ctl(w, ["events", "failed"])
        #expect(table.status == 0 && table.output.hasPrefix("ID "), "\(table.output)")
        #expect(table.output.contains("RULE") && table.output.contains("HTTP 500") && table.output.contains("registration"))

        failing.stop()
        let r = try Self.receiver(w, port: port)
        let id = try #require(failed[1]["id"] as? String)
        let redeliver = try Self.ctl(w, ["events", "redeliver", id])
        #expect(redeliver.status == 0, "\(redeliver.output)")
        #expect(Self.waitUntil(20) { Self.delivered(w) == [targets[1]] }, "\(Self.received(w))")
        let after = try Self.ctl(w, ["events", "failed", "--json"])
        #expect(after.output.contains(failed[0]["id"] as? String ?? "?") && !after.output.contains(id))
        let unknown = try Self.ctl(w, ["events", "redeliver", "no-such-id"])
        #expect(unknown.status == 1 && unknown.output.contains("no-such-id"), "\(unknown.output)")
        let api = try runTool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--unix-socket", w.socket,
                                       "http://x/v1/events/failed/nope/redeliver"])
        #expect(api.output == "404")
        #expect(try Self.metric(w, "sluice_event_dead_letters{rule=\"hook\"}") == 1)
        r.stop()
    }

    @Test func execDelivery() throws {
        let w = try Workspace()
        let script = w.path + "/audit.sh"
        let out = w.path + "/audit.out"
        try """
            #!/bin/sh
            body=$(cat)
            printf '%s %s %s %s\\n' "$SLUICE_RULE" "$SLUICE_EVENT_TYPE" "$SLUICE_EVENT_ID" "$body" >> \(out)

            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let events = """
            events:
              rules:
                - name: audit
                  match: { type: [registration, deregistration] }
                  deliver: { exec: \(script) }
                - name: broken
                  match: { type: [registration] }
                  deliver: { exec: /bin/false }
              retry: { attempts: 2, backoff: 10ms }

            """
        let d = try SluicedProcess(yaml: try Self.config(w, events: events))
        defer { d.terminate() }
        let targets = try Self.register(w, 2)
        #expect(try Self.ctl(w, ["targets", "deregister", "db", targets[0]]).status == 0)
        func lines() -> [String] {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(Self.waitUntil(20) { lines().count >= 3 }, "\(lines())")
        let got = lines()
        #expect(got.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
                == ["audit registration", "audit registration", "audit deregistration"])
        for line in got {
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            #expect(parts.count == 4 && parts[3].contains("\"id\":\"\(parts[2])\""), "\(line)")
        }
        #expect(got[0].contains(targets[0]) && got[1].contains(targets[1]))
        #expect(try Self.waitUntil(10) { (try Self.metric(w, "sluice_event_dead_letters{rule=\"broken\"}") ?? 0) >= 2 })
        let failed = try Self.ctl(w, ["events", "failed"])
        #expect(failed.output.contains("/bin/false exited with status 1"), "\(failed.output)")
    }

    @Test func configErrorsArePlaced() throws {
        let w = try Workspace()
        let path = w.path + "/bad.yaml"
        try (try Self.config(w, events: """
            events:
              rules:
                - name: hook
                  match: { type: [nope] }
                  deliver: { webhook: "ftp://127.0.0.1:1/", secret_file: \(w.path)/missing }

            """)).write(toFile: path, atomically: true, encoding: .utf8)
        let r = try SluicedProcess.run(["--config", path, "--check"])
        #expect(r.status == 1)
        #expect(r.output.contains("\(path):10:23"), "\(r.output)")
        #expect(r.output.contains("events.rules[0].match.type[0]") && r.output.contains("unknown event type \"nope\""))
        #expect(r.output.contains("\(path):11:27") && r.output.contains("expected a webhook URL"), "\(r.output)")
    }

    @Test func httpsWebhookVerifiesTheCertificate() throws {
        let w = try Workspace()
        let r = try Self.receiver(w, extra: ["--cert", try TestCerts.path("a.pem"), "--key", try TestCerts.path("a.key")])
        let events = """
            events:
              rules:
                - name: tls
                  match: { type: [registration] }
                  deliver: { webhook: "https://localhost:\(r.port)/tls", ca_file: \(try TestCerts.path("ca.pem")), secret_file: \(w.path)/secret }
                - name: untrusted
                  match: { type: [registration] }
                  deliver: { webhook: "https://127.0.0.1:\(r.port)/untrusted" }
              retry: { attempts: 2, backoff: 10ms }

            """
        let d = try SluicedProcess(yaml: try Self.config(w, events: events))
        defer { d.terminate() }
        let targets = try Self.register(w, 2)
        #expect(Self.waitUntil(20) { Self.delivered(w).count >= 2 }, "\(Self.received(w))")
        #expect(Self.delivered(w) == targets)
        #expect(Self.received(w).allSatisfy { $0["path"] as? String == "/tls" && $0["sig_ok"] as? Bool == true })
        // The system's CAs do not know the test CA: every attempt fails the handshake.
        #expect(try Self.waitUntil(20) { (try Self.metric(w, "sluice_event_dead_letters{rule=\"untrusted\"}") ?? 0) >= 2 })
        let failed = try Self.ctl(w, ["events", "failed"])
        #expect(failed.output.contains("TLS handshake: verify_failed"), "\(failed.output)")
        r.stop()
    }

    @Test func reloadAddsARule() throws {
        let w = try Workspace()
        let r = try Self.receiver(w)
        let d = try SluicedProcess(yaml: try Self.config(w, events: ""))
        defer { d.terminate() }
        _ = try Self.register(w, 1)
        try (try Self.config(w, events: Self.hookRules(port: r.port, types: "[registration, reload]", secret: false,
                                                       group: false, w: w)))
            .write(toFile: d.configPath, atomically: true, encoding: .utf8)
        let reload = try Self.ctl(w, ["reload"])
        #expect(reload.status == 0, "\(reload.output)")
        let added = try Self.register(w, 1, from: 23000)
        #expect(Self.waitUntil(20) { Self.received(w).filter { $0["answered"] as? String == "ok" }.count >= 2 },
                "\(Self.received(w))")
        let got = Self.received(w)
        // The reload's own event went through the rule it added; the earlier registration did not.
        #expect(got.map { $0["type"] as? String ?? "" } == ["reload", "registration"], "\(got)")
        #expect(got.last?["target"] as? String == added[0])
        #expect(got.allSatisfy { $0["signature"] is NSNull })
        r.stop()
    }
}
