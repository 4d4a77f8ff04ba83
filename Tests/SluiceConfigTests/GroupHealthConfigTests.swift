import SluiceConfig
import Testing

/// Group-level health, draining, slow start, fail-open and zone keys (SPEC §2, §4).
@Suite struct GroupHealthConfigTests {
    private func group(_ yaml: String) -> TargetGroupConfig? {
        load(yaml)?.targetGroups.first
    }

    @Test func defaultsWithoutKeys() throws {
        let tcp = try #require(group(groupDocument("targets: []")))
        #expect(tcp.healthCheck == HealthCheckConfig(protocolKind: .tcp))
        #expect(tcp.minHealthy == .count(1))
        #expect(tcp.deregistrationDelay == 30 * Nanoseconds.second)
        #expect(tcp.slowStart == 0)
        #expect(tcp.crossZone == .enabled)
        let http = try #require(group(httpGroupDocument("targets: []")))
        let check = try #require(http.healthCheck)
        #expect(check.protocolKind == .http)
        #expect(check.path == "/")
        #expect(check.port == nil)
        #expect(check.interval == 5 * Nanoseconds.second)
        #expect(check.timeout == 2 * Nanoseconds.second)
        #expect(check.healthyThreshold == 3)
        #expect(check.unhealthyThreshold == 2)
        #expect(check.matcher == [200...399])
        #expect(check.matches(status: 302) && !check.matches(status: 404))
    }

    @Test func healthCheckOff() throws {
        #expect(try #require(group(groupDocument("health_check: off"))).healthCheck == nil)
    }

    @Test func fullHealthCheck() throws {
        let yaml = httpGroupDocument(
            """
            health_check:
              protocol: http
              path: /healthz?deep=1
              port: 9100
              interval: 100ms
              timeout: 50ms
              healthy_threshold: 10
              unhealthy_threshold: 1
              matcher: "200, 204,300-399"
            """)
        let check = try #require(group(yaml)?.healthCheck)
        #expect(
            check
                == HealthCheckConfig(
                    protocolKind: .http, path: "/healthz?deep=1", port: 9100, interval: 100 * Nanoseconds.millisecond,
                    timeout: 50 * Nanoseconds.millisecond, healthyThreshold: 10, unhealthyThreshold: 1,
                    matcher: [200...200, 204...204, 300...399]))
    }

    @Test func partialHealthCheckKeepsDefaultsAndGroupProtocol() throws {
        let yaml = groupDocument("health_check: { interval: 1s, timeout: 500ms, port: traffic-port }")
        let tcp = try #require(group(yaml))
        #expect(
            tcp.healthCheck
                == HealthCheckConfig(
                    protocolKind: .tcp, interval: Nanoseconds.second, timeout: 500 * Nanoseconds.millisecond))
        // An http check of a tcp group is allowed (as NLB does).
        let mixed = try #require(group(groupDocument("health_check: { protocol: http, matcher: 200 }")))
        #expect(mixed.healthCheck?.protocolKind == .http)
        #expect(mixed.healthCheck?.matcher == [200...200])
    }

    @Test func otherGroupKeys() throws {
        let yaml = groupDocument(
            """
            deregistration_delay: 0s
            min_healthy: "50%"
            cross_zone: prefer_local
            slow_start: 30s
            """)
        let loaded = try #require(group(yaml))
        #expect(loaded.deregistrationDelay == 0)
        #expect(loaded.minHealthy == .percent(50))
        #expect(loaded.crossZone == .preferLocal)
        #expect(loaded.slowStart == 30 * Nanoseconds.second)
        #expect(try #require(group(groupDocument("cross_zone: false"))).crossZone == .disabled)
        #expect(try #require(group(groupDocument("cross_zone: true"))).crossZone == .enabled)
        #expect(try #require(group(groupDocument("min_healthy: 2"))).minHealthy == .count(2))
        #expect(try #require(group(groupDocument("slow_start: 15m"))).slowStart == 900 * Nanoseconds.second)
        #expect(try #require(group(groupDocument("deregistration_delay: 1h"))).deregistrationDelay
            == 3_600 * Nanoseconds.second)
    }

    @Test func timeoutMustBeShorterThanInterval() {
        #expect(
            loadErrors(groupDocument("health_check: { interval: 1s, timeout: 1s }")) == [
                ConfigError(
                    file: testFile, line: 6, column: 44, path: "target_groups[0].health_check.timeout",
                    message: "expected a timeout shorter than the interval 1s (timeout >= interval), got 1s")
            ])
        // Only the interval given: the default timeout (2s) is too long for it.
        #expect(
            loadErrors(groupDocument("health_check: { interval: 2s }")) == [
                ConfigError(
                    file: testFile, line: 6, column: 31, path: "target_groups[0].health_check.interval",
                    message: "expected a timeout shorter than the interval 2s (timeout >= interval), got the "
                        + "default timeout 2s")
            ])
        #expect(
            loadErrors(groupDocument("health_check: { timeout: 6s }")).map(\.message) == [
                "expected a timeout shorter than the default interval 5s (timeout >= interval), got 6s"
            ])
    }

    @Test(arguments: [
        ("health_check: { interval: 50ms }", "6:31 target_groups[0].health_check.interval",
         "expected a duration of 100ms or more, got \"50ms\""),
        ("health_check: { timeout: 0s }", "6:30 target_groups[0].health_check.timeout",
         "expected a duration more than 0s, got \"0s\""),
        ("health_check: { healthy_threshold: 11 }", "6:40 target_groups[0].health_check.healthy_threshold",
         "expected a number from 1 to 10, got 11"),
        ("health_check: { unhealthy_threshold: 0 }", "6:42 target_groups[0].health_check.unhealthy_threshold",
         "expected a number from 1 to 10, got 0"),
        ("health_check: { protocol: http, matcher: \"399-200\" }", "6:46 target_groups[0].health_check.matcher",
         "expected status codes and ranges from 100 to 599 such as \"200,204,300-399\", got \"399-200\""),
        ("health_check: { protocol: http, matcher: \"200,,300\" }", "6:46 target_groups[0].health_check.matcher",
         "expected status codes and ranges from 100 to 599 such as \"200,204,300-399\", got \"200,,300\""),
        ("health_check: { protocol: http, matcher: \"200-700\" }", "6:46 target_groups[0].health_check.matcher",
         "expected status codes and ranges from 100 to 599 such as \"200,204,300-399\", got \"200-700\""),
        ("health_check: { protocol: http, path: healthz }", "6:43 target_groups[0].health_check.path",
         "expected a path starting with /, such as /healthz, got \"healthz\""),
        ("health_check: { path: /healthz }", "6:21 target_groups[0].health_check.path",
         "\"path\" is used only by http and https health checks; this check's protocol is tcp"),
        ("health_check: { port: 0 }", "6:27 target_groups[0].health_check.port",
         "expected traffic-port or a port from 1 to 65535, got 0"),
        ("health_check: { protocol: icmp }", "6:31 target_groups[0].health_check.protocol",
         "expected tcp, http or https, got \"icmp\""),
        ("health_check: { proto: tcp }", "6:21 target_groups[0].health_check.proto",
         "unknown key \"proto\" (did you mean \"port\"?); allowed keys: protocol, path, port, interval, "
            + "timeout, healthy_threshold, unhealthy_threshold, matcher"),
        ("health_check: on", "6:19 target_groups[0].health_check",
         "expected off or a health_check mapping such as { protocol: http, path: /healthz }, got \"on\""),
        ("slow_start: 10s", "6:17 target_groups[0].slow_start",
         "expected 0s (off) or a duration from 30s to 15m, got \"10s\""),
        ("slow_start: 16m", "6:17 target_groups[0].slow_start",
         "expected 0s (off) or a duration from 30s to 15m, got \"16m\""),
        ("deregistration_delay: 2h", "6:27 target_groups[0].deregistration_delay",
         "expected a duration from 0s to 1h, got \"2h\""),
        ("min_healthy: 0", "6:18 target_groups[0].min_healthy",
         "expected a count of targets from 1 or a percentage from 1% to 100% such as \"50%\", got 0"),
        ("min_healthy: \"150%\"", "6:18 target_groups[0].min_healthy",
         "expected a count of targets from 1 or a percentage from 1% to 100% such as \"50%\", got the string "
            + "\"150%\""),
        ("min_healthy: half", "6:18 target_groups[0].min_healthy",
         "expected a count of targets from 1 or a percentage from 1% to 100% such as \"50%\", got \"half\""),
        ("cross_zone: maybe", "6:17 target_groups[0].cross_zone",
         "expected true, false or prefer_local, got \"maybe\""),
    ])
    func groupKeyErrors(line: String, position: String, message: String) {
        let errors = loadErrors(groupDocument(line))
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [position])
        #expect(errors.map(\.message) == [message])
    }
}
