import Foundation
import SluiceConfig
import Testing

/// http listeners: their keys, defaults and errors.
@Suite struct HTTPListenerConfigTests {
    @Test func defaults() throws {
        let config = try #require(load(httpListenerDocument("")))
        let listener = config.listeners[0]
        #expect(listener.protocolKind == .http)
        #expect(listener.idleTimeout == 60 * Nanoseconds.second)
        #expect(listener.connectTimeout == 3 * Nanoseconds.second)
        #expect(listener.rules.isEmpty)
        #expect(listener.defaultAction == .forward([WeightedGroup(group: 0, weight: 1)]))
        let http = try #require(listener.http)
        #expect(http == HTTPListenerSettings())
        #expect(http.headerTimeout == 10 * Nanoseconds.second)
        #expect(http.responseTimeout == 60 * Nanoseconds.second)
        #expect(http.desyncMitigation == .defensive)
        #expect(http.xff == .append)
        #expect(http.accessLog == .off)
        #expect(http.maxRequestBody == 0)
        #expect(http.maxHeaderBytes == 65_536)
        #expect(http.maxHeaders == 100)
        #expect(http.maxRequestLine == 16_384)
        #expect(http.retryIdempotent == false)
        #expect(config.targetGroups[0].algorithm == .roundRobin)
    }

    @Test func tcpListenersHaveNoHTTPSettings() throws {
        let config = try #require(load(minimalYAML))
        #expect(config.listeners[0].http == nil)
        #expect(config.listeners[0].rules.isEmpty)
        #expect(config.listeners[0].idleTimeout == ListenerConfig.defaultTCPIdleTimeout)
    }

    @Test func everyKeySet() throws {
        let yaml = httpListenerDocument(
            """
            idle_timeout: 2m
            connect_timeout: 500ms
            header_timeout: 5s
            response_timeout: 30s
            desync_mitigation: strictest
            xff: remove
            access_log: /var/log/sluice/access.log
            max_request_body: 10M
            max_header_bytes: 32K
            max_headers: 50
            max_request_line: 8KiB
            retry_idempotent: true
            """)
        let listener = try #require(load(yaml)?.listeners[0])
        #expect(listener.idleTimeout == 120 * Nanoseconds.second)
        #expect(listener.connectTimeout == 500 * Nanoseconds.millisecond)
        #expect(
            listener.http
                == HTTPListenerSettings(
                    headerTimeout: 5 * Nanoseconds.second, responseTimeout: 30 * Nanoseconds.second,
                    desyncMitigation: .strictest, xff: .remove, accessLog: .file("/var/log/sluice/access.log"),
                    maxRequestBody: 10 * 1024 * 1024, maxHeaderBytes: 32 * 1024, maxHeaders: 50,
                    maxRequestLine: 8 * 1024, retryIdempotent: true))
    }

    @Test(arguments: [
        ("access_log: stdout", AccessLogDestination.stdout), ("access_log: off", .off),
        ("access_log: \"off\"", .off), ("access_log: /tmp/a.log", .file("/tmp/a.log")),
        ("xff: preserve", nil), ("desync_mitigation: monitor", nil), ("max_request_body: 0", nil),
        ("max_request_body: 1_000", nil), ("max_request_body: 2GB", nil),
    ])
    func acceptedValues(line: String, accessLog: AccessLogDestination?) throws {
        let listener = try #require(load(httpListenerDocument(line))?.listeners[0])
        if let accessLog { #expect(listener.http?.accessLog == accessLog) }
        if line == "xff: preserve" { #expect(listener.http?.xff == .preserve) }
        if line == "desync_mitigation: monitor" { #expect(listener.http?.desyncMitigation == .monitor) }
        if line == "max_request_body: 1_000" { #expect(listener.http?.maxRequestBody == 1000) }
        if line == "max_request_body: 2GB" { #expect(listener.http?.maxRequestBody == 2_000_000_000) }
    }

    @Test func badValuesSayWhatWasExpected() {
        let yaml = httpListenerDocument(
            """
            desync_mitigation: paranoid
            xff: keep
            access_log: logs/access.log
            header_timeout: 0s
            max_request_body: -1
            max_header_bytes: 512
            max_headers: 0
            retry_idempotent: sometimes
            response_timeout: 30
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "6:24 listeners[0].desync_mitigation: expected monitor, defensive or strictest, got \"paranoid\"",
                "7:10 listeners[0].xff: expected append, preserve or remove, got \"keep\"",
                "8:17 listeners[0].access_log: expected off, stdout or an absolute file path, got \"logs/access.log\"",
                "9:21 listeners[0].header_timeout: expected a duration more than 0s, got \"0s\"",
                "10:23 listeners[0].max_request_body: expected a size in bytes like 1048576 or 10M (0 = unlimited), "
                    + "got -1",
                "11:23 listeners[0].max_header_bytes: expected a size from 1024 to 1048576 bytes (units K, M, G "
                    + "allowed), got 512",
                "12:18 listeners[0].max_headers: expected a number of headers from 1 to 1000, got 0",
                "13:23 listeners[0].retry_idempotent: expected true or false, got \"sometimes\"",
                "14:23 listeners[0].response_timeout: expected a duration like 250ms, 5s, 2m or 1h, got \"30\" "
                    + "(a unit is required)",
            ])
    }

    @Test func sizesWithBadUnits() {
        #expect(
            loadErrors(httpListenerDocument("max_request_body: 10 MB\nmax_header_bytes: 1.5K")).map(\.message) == [
                "expected a size in bytes like 1048576 or 10M (0 = unlimited), got \"10 MB\"",
                "expected a size from 1024 to 1048576 bytes (units K, M, G allowed), got \"1.5K\"",
            ])
    }

    @Test func requestLineMayNotExceedTheHeaderLimit() {
        #expect(
            loadErrors(httpListenerDocument("max_header_bytes: 8K\nmax_request_line: 16K")) == [
                ConfigError(
                    file: testFile, line: 7, column: 23, path: "listeners[0].max_request_line",
                    message: "max_request_line (16384) may not exceed max_header_bytes (8192), which counts the "
                        + "request line too")
            ])
    }

    @Test func unknownKeyOnAnHTTPListenerListsTheHTTPKeys() {
        let errors = loadErrors(httpListenerDocument("xfff: append"))
        #expect(errors.count == 1)
        #expect(errors.first?.message.hasPrefix("unknown key \"xfff\" (did you mean \"xff\"?); allowed keys: ") == true)
        #expect(errors.first?.message.contains("max_request_line") == true)
    }

    @Test func theSpecExampleListenerLoads() throws {
        let yaml = """
            listeners:
              - name: web
                protocol: http            # http | https | tcp | tls | udp | tcp_udp
                bind: 0.0.0.0:8080
                idle_timeout: 60s
                desync_mitigation: defensive   # monitor | defensive | strictest
                xff: append               # append | preserve | remove
                access_log: stdout        # stdout | PATH | off
                rules:                    # evaluated by ascending priority; first match wins
                  - priority: 10
                    when:                 # all listed conditions must hold (AND);
                      host: ["api.example.com", "*.api.example.com"]   # values within one condition are OR
                      path: ["/v2/*"]
                      method: [GET, POST]
                      header: { x-canary: ["true", "yes"] }
                      query: { version: ["2"] }
                      source: ["10.0.0.0/8", "::1/128"]
                    then:
                      forward:
                        - { group: app-v2, weight: 90 }
                        - { group: app, weight: 10 }
                  - priority: 20
                    when: { path: ["/old/*"] }
                    then:
                      redirect: { status: 301, protocol: "#{protocol}", host: "#{host}", port: "#{port}", path: "/new/#{path}", query: "#{query}" }
                  - priority: 30
                    when: { path: ["/ping"] }
                    then:
                      respond: { status: 200, content_type: text/plain, body: "pong\\n" }
                default: { forward: app }
            target_groups:
              - name: app
                protocol: http            # http | https | tcp | tls | udp
                algorithm: round_robin    # see §4
                stickiness: { cookie: SLUICE, duration: 1h }   # optional, L7 only
                targets:
                  - { address: 127.0.0.1:9001, zone: zone-a, weight: 1 }
                  - { address: 127.0.0.1:9002, zone: zone-b }
              - { name: app-v2, protocol: http }
            """
        let config = try #require(load(yaml))
        let listener = config.listeners[0]
        #expect(listener.http?.accessLog == .stdout)
        var loopback = [UInt8](repeating: 0, count: 16)
        loopback[15] = 1
        #expect(
            listener.rules == [
                RuleConfig(
                    priority: 10,
                    conditions: RuleConditions(
                        host: ["api.example.com", "*.api.example.com"], path: ["/v2/*"], method: ["GET", "POST"],
                        header: [HeaderCondition(name: "x-canary", values: ["true", "yes"])],
                        query: [QueryCondition(key: "version", values: ["2"])],
                        source: [
                            CIDR(family: .inet, address: [10, 0, 0, 0], prefixLength: 8),
                            CIDR(family: .inet6, address: loopback, prefixLength: 128),
                        ]),
                    action: .forward([WeightedGroup(group: 1, weight: 90), WeightedGroup(group: 0, weight: 10)])),
                RuleConfig(
                    priority: 20, conditions: RuleConditions(path: ["/old/*"]),
                    action: .redirect(RedirectAction(status: 301, path: "/new/#{path}"))),
                RuleConfig(
                    priority: 30, conditions: RuleConditions(path: ["/ping"]),
                    action: .respond(FixedResponse(status: 200, contentType: "text/plain", body: Array("pong\n".utf8)))),
            ])
        #expect(config.targetGroups[0].stickiness == Stickiness(cookie: "SLUICE", duration: 3600 * Nanoseconds.second))
    }

    @Test func theShippedExampleFileStillLoads() throws {
        // etc/sluice/sluice.yaml is maintained by the lead; it must load whatever it enables.
        let path = #filePath.replacingOccurrences(of: "Tests/SluiceConfigTests/HTTPListenerConfigTests.swift",
            with: "etc/sluice/sluice.yaml")
        // Its certificate paths are relative to the file (`make run` makes them beside its copy):
        // load a copy in a directory with such files.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("example-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("certs"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["demo.pem", "demo.key"] {
            try Data("placeholder".utf8).write(to: dir.appendingPathComponent("certs/" + name))
        }
        let copy = dir.appendingPathComponent("sluice.yaml").path
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        #expect(loadErrors(path: copy) == [])
    }
}
