import Foundation
import Testing

@testable import SluiceConfig

/// `events:` (SPEC §13): rules, delivery, retry, and file:line:column errors.
@Suite struct EventsConfigTests {
    @Test func absentMeansNoRules() throws {
        let config = try #require(load(minimalYAML))
        #expect(config.events == nil)
    }

    @Test func fullBlockLoads() throws {
        let secret = try writeTemporaryFile("s3cret\n")
        defer { try? FileManager.default.removeItem(atPath: secret) }
        let yaml = """
            events:
              rules:
                - name: page-on-unhealthy
                  match: { type: [target_state], state: [unhealthy], group: [app] }
                  deliver: { webhook: "http://127.0.0.1:9099/hooks/sluice?x=1", secret_file: \(secret) }
                - name: audit
                  match: { type: [registration, deregistration, reload, scaling_activity] }
                  deliver: { exec: /usr/local/bin/sluice-audit }
                - name: all
                  deliver: { webhook: "http://[::1]:80" }
                - name: tls
                  deliver: { webhook: "https://localhost:8443/h", ca_file: \(secret) }
              retry: { attempts: 3, backoff: 50ms, max_backoff: 1s }

            """ + minimalYAML
        let config = try #require(load(yaml))
        let events = try #require(config.events)
        #expect(events.rules.map(\.name) == ["page-on-unhealthy", "audit", "all", "tls"])
        if case .webhook(let t, _) = events.rules[3].deliver {
            #expect(t.tls && t.host == "127.0.0.1" && t.serverName == "localhost" && t.caFile == secret && t.port == 8443)
        } else {
            Issue.record("expected a webhook")
        }
        #expect(events.rules[0].match == [.type: ["target_state"], .state: ["unhealthy"], .group: ["app"]])
        guard case .webhook(let target, let key) = events.rules[0].deliver else {
            Issue.record("expected a webhook")
            return
        }
        #expect(target.host == "127.0.0.1" && target.port == 9099 && target.path == "/hooks/sluice?x=1")
        #expect(target.authority == "127.0.0.1:9099" && !target.tls)
        #expect(key == Array("s3cret".utf8))
        #expect(events.rules[1].deliver == .exec("/usr/local/bin/sluice-audit"))
        #expect(events.rules[2].match.isEmpty)
        if case .webhook(let t, let s) = events.rules[2].deliver {
            #expect(t.host == "::1" && t.path == "/" && s == nil)
        }
        #expect(events.retry == EventRetryConfig(attempts: 3, backoff: 50 * Nanoseconds.millisecond,
                                                 maxBackoff: Nanoseconds.second))
    }

    @Test func retryDefaultsAndBackoff() throws {
        let config = try #require(load("events: { rules: [] }\n" + minimalYAML))
        let retry = try #require(config.events).retry
        #expect(retry.attempts == 10 && retry.backoff == Nanoseconds.second && retry.maxBackoff == 300 * Nanoseconds.second)
        #expect(retry.delay(afterFailedAttempt: 1) == Nanoseconds.second)
        #expect(retry.delay(afterFailedAttempt: 3) == 4 * Nanoseconds.second)
        #expect(retry.delay(afterFailedAttempt: 9) == 256 * Nanoseconds.second)
        #expect(retry.delay(afterFailedAttempt: 10) == 300 * Nanoseconds.second)
        #expect(retry.delay(afterFailedAttempt: 1000) == 300 * Nanoseconds.second)
    }

    @Test func errorsArePlaced() {
        let yaml = """
            events:
              rules:
                - name: "bad name"
                  deliver: { exec: /bin/true }
                - name: ok
                  match: { type: [reboot], colour: [red] }
                  deliver: { webhook: "ftp://127.0.0.1:1/x" }
                - name: ok
                  deliver: { exec: relative/path }
                - name: two
                  deliver: { exec: /bin/true, webhook: "http://127.0.0.1:1/" }
                - name: secretless
                  deliver: { webhook: "http://127.0.0.1:1/", secret_file: /nonexistent/secret }
                - name: named
                  deliver: { webhook: "http://example.com:80/" }
              retry: { attempts: 0, backoff: 5ms, max_backoff: 48h }

            """ + minimalYAML
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [
            "3:13 events.rules[0].name",
            "6:23 events.rules[1].match.type[0]",
            "6:32 events.rules[1].match.colour",
            "7:27 events.rules[1].deliver.webhook",
            "9:24 events.rules[2].deliver.exec",
            "11:16 events.rules[3].deliver",
            "13:63 events.rules[4].deliver.secret_file",
            "15:27 events.rules[5].deliver.webhook",
            "16:22 events.retry.attempts",
            "16:34 events.retry.backoff",
            "16:52 events.retry.max_backoff",
        ], "\(errors)")
        let text = errors.map(\.message).joined(separator: "\n")
        #expect(text.contains("expected a webhook URL like http://"))
        #expect(text.contains("unknown event field \"colour\""))
        #expect(text.contains("unknown event type \"reboot\""))
        #expect(text.contains("/nonexistent/secret"))
    }

    @Test func duplicateNamesAndEmptySecret() throws {
        let empty = try writeTemporaryFile("\n")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let yaml = """
            events:
              rules:
                - { name: a, deliver: { exec: /bin/true } }
                - { name: a, deliver: { webhook: "http://127.0.0.1:1/", secret_file: \(empty) } }

            """ + minimalYAML
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [
            "4:74 events.rules[1].deliver.secret_file",
        ], "\(errors)")
        #expect(errors.first?.message.contains("\(empty) is empty") == true)
        let dup = loadErrors("events:\n  rules:\n    - { name: a, deliver: { exec: /bin/true } }\n"
                             + "    - { name: a, deliver: { exec: /bin/false } }\n" + minimalYAML)
        #expect(dup.map { "\($0.line):\($0.column) \($0.path)" } == ["4:7 events.rules[1]"], "\(dup)")
        #expect(dup.first?.message.contains("already used by events.rules[0]") == true)
    }

    @Test func caFileOnlyWithHTTPS() {
        let yaml = """
            events:
              rules:
                - { name: a, deliver: { webhook: "http://127.0.0.1:1/", ca_file: /etc/hostname } }
                - { name: b, deliver: { exec: /bin/true, ca_file: /etc/hostname } }

            """ + minimalYAML
        let errors = loadErrors(yaml)
        #expect(errors.map(\.path) == ["events.rules[0].deliver.ca_file", "events.rules[1].deliver.ca_file"], "\(errors)")
        #expect(errors.first?.message.contains("https://") == true)
    }

    @Test func ruleNames() {
        #expect(EventRuleConfig.nameProblem("page-on_unhealthy.1") == nil)
        #expect(EventRuleConfig.nameProblem(String(repeating: "a", count: 64)) == nil)
        #expect(EventRuleConfig.nameProblem(String(repeating: "a", count: 65)) != nil)
        for bad in ["", ".", "..", "a/b", "a b", "é"] { #expect(EventRuleConfig.nameProblem(bad) != nil, "\(bad)") }
    }
}
