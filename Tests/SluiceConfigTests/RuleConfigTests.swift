import SluiceConfig
import Testing

/// `rules:` of http listeners: conditions, priorities and their errors.
@Suite struct RuleConfigTests {
    @Test func rulesAreSortedByPriorityAndScalarsAreListsOfOne() throws {
        let yaml = rulesDocument(
            """
            - { priority: 20, when: { path: /b }, then: { forward: v2 } }
            - priority: 5
              when:
                host: API.Example.com
                method: GET
                header: { X-Canary: yes, x-user: ["*"] }
                query: { v: "2" }
                source: 10.1.2.3/8
              then: { forward: app }
            """)
        let rules = try #require(load(yaml)?.listeners[0].rules)
        #expect(rules.map(\.priority) == [5, 20])
        #expect(
            rules[0].conditions
                == RuleConditions(
                    host: ["api.example.com"], method: ["GET"],
                    header: [
                        HeaderCondition(name: "x-canary", values: ["yes"]),
                        HeaderCondition(name: "x-user", values: ["*"]),
                    ],
                    query: [QueryCondition(key: "v", values: ["2"])],
                    source: [CIDR(family: .inet, address: [10, 0, 0, 0], prefixLength: 8)]))
        #expect(rules[1].conditions == RuleConditions(path: ["/b"]))
        #expect(rules[1].action == .forward([WeightedGroup(group: 1, weight: 1)]))
    }

    @Test func sourceForms() throws {
        let yaml = rulesDocument(
            """
            - priority: 1
              when: { source: ["192.168.1.7", "2001:db8::/32", "[::1]/128", "0.0.0.0/0", "fe80::1:2/65"] }
              then: { forward: app }
            """)
        let sources = try #require(load(yaml)?.listeners[0].rules[0].conditions.source)
        #expect(sources.map(\.description) == [
            "192.168.1.7/32", "2001:db8:0:0:0:0:0:0/32", "0:0:0:0:0:0:0:1/128", "0.0.0.0/0", "fe80:0:0:0:0:0:0:0/65",
        ])
    }

    @Test func duplicatePriorityIsReportedAtTheSecond() {
        let yaml = rulesDocument(
            """
            - { priority: 10, when: { path: /a }, then: { forward: app } }
            - { priority: 10, when: { path: /b }, then: { forward: app } }
            """)
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 8, column: 21, path: "listeners[0].rules[1].priority",
                    message: "duplicate priority 10 in this listener (also listeners[0].rules[0].priority)")
            ])
    }

    @Test func prioritiesMustBeInRange() {
        let yaml = rulesDocument(
            """
            - { priority: 0, when: { path: /a }, then: { forward: app } }
            - { priority: 50001, when: { path: /b }, then: { forward: app } }
            - { priority: 50000, when: { path: /c }, then: { forward: app } }
            - { priority: high, when: { path: /d }, then: { forward: app } }
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "7:21 listeners[0].rules[0].priority: expected a priority from 1 to 50000, got 0",
                "8:21 listeners[0].rules[1].priority: expected a priority from 1 to 50000, got 50001",
                "10:21 listeners[0].rules[3].priority: expected a priority from 1 to 50000, got \"high\"",
            ])
    }

    @Test func missingKeysOfARule() {
        let yaml = rulesDocument("- { when: { path: /a } }\n- priority: 3")
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path)" } == [
                "7:9 listeners[0].rules[0].priority", "7:9 listeners[0].rules[0].then",
                "8:9 listeners[0].rules[1].when", "8:9 listeners[0].rules[1].then",
            ])
        #expect(loadErrors(yaml)[0].message == "missing required key \"priority\" (a priority from 1 to 50000)")
    }

    @Test func aRuleNeedsAtLeastOneCondition() {
        let yaml = rulesDocument("- { priority: 1, when: {}, then: { forward: app } }")
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 7, column: 30, path: "listeners[0].rules[0].when",
                    message: "expected at least one condition (host, path, method, header, query or source); "
                        + "a rule that always applies belongs in the listener's default")
            ])
    }

    @Test func unknownConditionSuggestsTheRightOne() {
        let yaml = rulesDocument("- { priority: 1, when: { hosts: [a.example] }, then: { forward: app } }")
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == ["7:32 listeners[0].rules[0].when.hosts"])
        #expect(
            errors.first?.message
                == "unknown key \"hosts\" (did you mean \"host\"?); allowed keys: host, path, method, header, query, "
                + "source")
    }

    @Test func badConditionValuesAreReportedAtTheValue() {
        let yaml = rulesDocument(
            """
            - priority: 1
              when:
                host: ["ok.example", "bad host"]
                path: [/ok, "api/*"]
                method: ["GET", "GE T"]
                header: { "x canary": ["a"], X-A: [b], x-a: [c] }
                source: ["10.0.0.0/8", "10.0.0.0/33", "10.0.0.300", "fe80::/129", "10.0.0.0/"]
              then: { forward: app }
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "9:32 listeners[0].rules[0].when.host[1]: expected a host name pattern like *.example.com, "
                    + "got \"bad host\"",
                "10:23 listeners[0].rules[0].when.path[1]: expected a path pattern like /api/* (starting with / "
                    + "or *), got \"api/*\"",
                "11:27 listeners[0].rules[0].when.method[1]: expected an HTTP method like GET, got \"GE T\"",
                "12:21 listeners[0].rules[0].when.header.x canary: expected a header name like x-canary, "
                    + "got \"x canary\"",
                "12:50 listeners[0].rules[0].when.header.x-a: header \"x-a\" is listed twice "
                    + "(also listeners[0].rules[0].when.header.X-A)",
                "13:34 listeners[0].rules[0].when.source[1]: expected a CIDR like 10.0.0.0/8 or ::1/128, "
                    + "got \"10.0.0.0/33\": prefix length \"33\" is not a number from 0 to 32",
                "13:49 listeners[0].rules[0].when.source[2]: expected a CIDR like 10.0.0.0/8 or ::1/128, "
                    + "got \"10.0.0.300\": \"10.0.0.300\" is not an IPv4 or IPv6 address",
                "13:63 listeners[0].rules[0].when.source[3]: expected a CIDR like 10.0.0.0/8 or ::1/128, "
                    + "got \"fe80::/129\": prefix length \"129\" is not a number from 0 to 128",
                "13:77 listeners[0].rules[0].when.source[4]: expected a CIDR like 10.0.0.0/8 or ::1/128, "
                    + "got \"10.0.0.0/\": prefix length \"\" is not a number from 0 to 32",
            ])
    }

    @Test func emptyConditionListsAndMappings() {
        let yaml = rulesDocument(
            """
            - priority: 1
              when: { host: [], header: {}, query: [a], path: }
              then: { forward: app }
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "8:23 listeners[0].rules[0].when.host: expected at least one value (a host name pattern like "
                    + "*.example.com), got an empty list",
                "8:35 listeners[0].rules[0].when.header: expected at least one header, got an empty mapping",
                "8:46 listeners[0].rules[0].when.query: expected a mapping of query key to values, got a list",
                "8:57 listeners[0].rules[0].when.path: expected a list of values (a path pattern like /api/* "
                    + "(starting with / or *)), got nothing",
            ])
    }

    @Test func wildcardsAreAlwaysValid() throws {
        let yaml = rulesDocument(
            """
            - priority: 1
              when: { host: ["*", "?", "*.*.example.*", "a?c"], path: ["*", "/a*b*c", "/??"], header: { x: "*" }, query: { "*": "*" } }
              then: { forward: app }
            """)
        let conditions = try #require(load(yaml)?.listeners[0].rules[0].conditions)
        #expect(conditions.host == ["*", "?", "*.*.example.*", "a?c"])
        #expect(conditions.path == ["*", "/a*b*c", "/??"])
    }

    @Test func ruleForwardsAreChecked() {
        let yaml = rulesDocument(
            """
            - { priority: 1, when: { path: /a }, then: { forward: nowhere } }
            - { priority: 2, when: { path: /b }, then: { forward: db } }
            - { priority: 3, when: { path: /c }, then: { forward: [ { group: app, weight: 0 } ] } }
            - { priority: 4, when: { path: /d }, then: { forward: [ { group: app, weight: 1000 } ] } }
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "7:61 listeners[0].rules[0].then.forward: unknown target group \"nowhere\"; defined groups: app, "
                    + "v2, db",
                "8:61 listeners[0].rules[1].then.forward: target group \"db\" has protocol tcp, which does not fit "
                    + "an http listener (it needs an http or https group)",
                "9:61 listeners[0].rules[2].then.forward: at least one group needs a weight above 0",
                "10:85 listeners[0].rules[3].then.forward[0].weight: expected a weight from 0 to 999, got 1000",
            ])
    }

    @Test func tcpListenerMayNotForwardToAnHTTPGroupNorHTTPToTCP() {
        let yaml = """
            listeners:
              - { name: pg, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: app } }
              - { name: web, protocol: http, bind: 127.0.0.1:8080, default: { forward: db } }
            target_groups:
              - { name: app, protocol: http }
              - { name: db, protocol: tcp }
            """
        #expect(
            loadErrors(yaml).map(\.message) == [
                "target group \"app\" has protocol http, which does not fit a tcp listener (it needs a tcp, tls or "
                    + "tcp_udp group)",
                "target group \"db\" has protocol tcp, which does not fit an http listener (it needs an http or "
                    + "https group)",
            ])
    }

    @Test func rulesMayBeEmptyOrNull() throws {
        #expect(try #require(load(httpListenerDocument("rules: []"))).listeners[0].rules.isEmpty)
        #expect(try #require(load(httpListenerDocument("rules:"))).listeners[0].rules.isEmpty)
        #expect(
            loadErrors(httpListenerDocument("rules: { priority: 1 }")).map(\.message) == [
                "expected a list of rules, got a mapping"
            ])
    }

    /// Methods, header and query names and values are capped at 1 KiB: aliases repeat a scalar up
    /// to 200 000 times, and a rule arena past 2 GiB would overflow its Int32 offsets (finding F4).
    /// (A plain key is limited to 1024 characters by YAML itself; `? key` spells a longer one.)
    @Test func longMethodsHeadersAndQueriesAreRefused() {
        let ok = String(repeating: "A", count: 1024)
        let long = String(repeating: "A", count: 1025)
        let accepted = rulesDocument(
            """
            - priority: 1
              when: { method: \(ok), header: { \(ok): \(ok) }, query: { \(ok): \(ok) } }
              then: { forward: app }
            """)
        #expect(loadErrors(accepted).isEmpty)
        let yaml = rulesDocument(
            """
            - priority: 1
              when: { method: \(long), header: { ? \(long) : a, x-a: \(long) }, query: { ? \(long) : a, k: \(long) } }
              then: { forward: app }
            """)
        #expect(
            loadErrors(yaml).map(\.path) == [
                "listeners[0].rules[0].when.method",
                "listeners[0].rules[0].when.header.\(long)",
                "listeners[0].rules[0].when.header.x-a",
                "listeners[0].rules[0].when.query.\(long)",
                "listeners[0].rules[0].when.query.k",
            ])
    }
}
