import SluiceConfig
import Testing

/// Keys and values of later releases are refused at the key, saying so, and told apart from typos.
@Suite struct LaterFeatureTests {
    @Test(arguments: [
        ("https", "TLS termination"), ("tls", "TLS termination"), ("udp", "UDP forwarding"),
        ("tcp_udp", "UDP forwarding"),
    ])
    func laterListenerProtocols(protocolName: String, feature: String) {
        let yaml = listenerDocument("").replacingOccurrences(of: "protocol: tcp\n", with: "protocol: \(protocolName)\n")
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 3, column: 5, path: "listeners[0].protocol",
                    message:
                        "\"protocol: \(protocolName)\" is not supported yet (\(feature) arrives with a later release); "
                        + "supported now: tcp, http")
            ])
    }

    @Test func laterGroupProtocolAlsoFailsTheFitCheck() {
        let yaml = """
            listeners:
              - { name: pg, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
            target_groups:
              - { name: db, protocol: udp }
            """
        #expect(
            loadErrors(yaml).map(\.message) == [
                "target group \"db\" has protocol udp, which does not fit a tcp listener (it needs a tcp group)",
                "\"protocol: udp\" is not supported yet (UDP forwarding arrives with a later release); "
                    + "supported now: tcp, http",
            ])
    }

    @Test(arguments: [
        "rules: []", "desync_mitigation: defensive", "xff: append", "access_log: stdout", "header_timeout: 5s",
        "response_timeout: 5s", "max_request_body: 1048576", "max_header_bytes: 8K", "max_headers: 50",
        "max_request_line: 4096", "retry_idempotent: true",
    ])
    func httpListenerKeysAreRefusedOnTCPListeners(line: String) {
        let key = String(line.prefix { $0 != ":" })
        #expect(
            loadErrors(listenerDocument(line)) == [
                ConfigError(
                    file: testFile, line: 6, column: 5, path: "listeners[0].\(key)",
                    message: "\"\(key)\" is a key of http listeners; this listener's protocol is tcp")
            ])
    }

    @Test func tlsIsStillLater() {
        let errors = loadErrors(listenerDocument("tls: { certificates: [] }"))
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == ["6:5 listeners[0].tls"])
        #expect(
            errors.first?.message
                == "\"tls\" is not supported yet (TLS termination arrives with a later release)")
    }

    @Test func acceptedValuesOfLaterKeysLoad() throws {
        let yaml = """
            listeners:
              - name: pg
                protocol: tcp
                bind: 127.0.0.1:5432
                proxy_protocol: "off"
                accept_proxy_protocol: false
                default: { forward: db }
            target_groups:
              - { name: db, protocol: tcp, cross_zone: true, slow_start: 0s, health_check: off }
            """
        _ = try ConfigLoader.parse(yaml: yaml, file: testFile)
    }

    @Test func proxyProtocolValues() {
        let errors = loadErrors(listenerDocument("proxy_protocol: v2\naccept_proxy_protocol: true"))
        #expect(
            errors == [
                ConfigError(
                    file: testFile, line: 6, column: 5, path: "listeners[0].proxy_protocol",
                    message: "\"proxy_protocol: v2\" is not supported yet (PROXY protocol arrives with a later "
                        + "release); supported now: off"),
                ConfigError(
                    file: testFile, line: 7, column: 5, path: "listeners[0].accept_proxy_protocol",
                    message: "\"accept_proxy_protocol: true\" is not supported yet (PROXY protocol arrives with a "
                        + "later release); supported now: false"),
            ])
        #expect(
            loadErrors(listenerDocument("proxy_protocol: v3")).map(\.message) == [
                "expected off, v1 or v2, got \"v3\""
            ])
    }

    @Test func laterGroupKeysAndValues() {
        let yaml = groupDocument(
            """
            algorithm: random_two
            deregistration_delay: 30s
            min_healthy: 1
            cross_zone: prefer_local
            slow_start: 30s
            health_check: { protocol: tcp }
            """)
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "6:5 target_groups[0].algorithm", "7:5 target_groups[0].deregistration_delay",
                "8:5 target_groups[0].min_healthy", "9:5 target_groups[0].cross_zone",
                "10:5 target_groups[0].slow_start", "11:5 target_groups[0].health_check",
            ])
        #expect(errors.allSatisfy { $0.message.contains("is not supported yet (") })
        #expect(
            errors[0].message == "\"algorithm: random_two\" is not supported yet (random_two for tcp groups arrives "
                + "with a later release); supported now: round_robin, least_outstanding, flow_hash")
        #expect(errors[3].message.hasSuffix("; supported now: true"))
        #expect(
            errors[4].message == "\"slow_start: 30s\" is not supported yet (slow start arrives with a later "
                + "release); supported now: 0s")
        #expect(errors[5].message.hasSuffix("(health checks arrive with a later release); supported now: off"))
    }

    @Test func crossZoneFalseIsLaterButGarbageIsAnError() {
        #expect(
            loadErrors(groupDocument("cross_zone: false")).map(\.message) == [
                "\"cross_zone: false\" is not supported yet (zone-aware routing arrives with a later release); "
                    + "supported now: true"
            ])
        #expect(
            loadErrors(groupDocument("cross_zone: maybe")) == [
                ConfigError(
                    file: testFile, line: 6, column: 17, path: "target_groups[0].cross_zone",
                    message: "expected true, false or prefer_local, got \"maybe\"")
            ])
    }

    @Test func registryAndLaterActions() {
        let yaml =
            "registry: etcd://127.0.0.1:2379/sluice\n"
            + listenerDocument("").replacingOccurrences(of: "{ forward: db }", with: "{ respond: { status: 200 } }")
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "1:1 registry", "6:16 listeners[0].default.respond",
            ])
        #expect(
            errors[0].message == "\"registry\" is not supported yet (the shared etcd registry arrives with a "
                + "later release)")
    }

    @Test func typoOfALaterKeyIsUnknownNotLater() {
        let errors = loadErrors(listenerDocument("rulez: []"))
        #expect(errors.count == 1)
        #expect(errors[0].message.hasPrefix("unknown key \"rulez\" (did you mean \"rules\"?); allowed keys: name,"))
    }
}
