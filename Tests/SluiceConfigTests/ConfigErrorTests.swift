import SluiceConfig
import Testing

/// Each kind of error: exact position (file:line:column), key path and message.
@Suite struct ConfigErrorTests {
    @Test func unknownKeyIsReportedAtTheKeyWithASuggestion() {
        let errors = loadErrors(listenerDocument("bnid: 127.0.0.1:80"))
        #expect(
            errors == [
                ConfigError(
                    file: testFile, line: 6, column: 5, path: "listeners[0].bnid",
                    message: "unknown key \"bnid\" (did you mean \"bind\"?); allowed keys: name, protocol, bind, "
                        + "idle_timeout, connect_timeout, default, proxy_protocol, accept_proxy_protocol, access_log")
            ])
    }

    @Test func unknownTopLevelAndNodeKeys() {
        let yaml = """
            nodes: {}
            node: { zone: a, max_conn: 5 }
            """ + "\n" + minimalYAML
        #expect(positions(yaml) == ["1:1 nodes", "2:18 node.max_conn"])
        let errors = loadErrors(yaml)
        #expect(
            errors[0].message == "unknown key \"nodes\" (did you mean \"node\"?); "
                + "allowed keys: node, control, registry, listeners, target_groups, events")
        #expect(errors[1].message.hasPrefix("unknown key \"max_conn\"; allowed keys: name, zone, workers"))
    }

    @Test func missingRequiredKeyPointsAtTheMapping() {
        let yaml = """
            listeners:
              - name: pg
                protocol: tcp
                default: { forward: db }
            target_groups:
              - { protocol: tcp }
            """
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "2:5 listeners[0].bind", "4:25 listeners[0].default.forward", "6:5 target_groups[0].name",
            ])
        #expect(errors[0].message == "missing required key \"bind\" (the address to listen on, like 0.0.0.0:8080)")
        #expect(errors[2].message == "missing required key \"name\" (the group's name)")
    }

    @Test func missingListenersAndEmptyListeners() {
        #expect(positions("target_groups: []\n") == ["1:1 listeners"])
        #expect(loadErrors("target_groups: []\n")[0].message.hasPrefix("missing required key \"listeners\""))
        #expect(
            loadErrors("listeners: []\n") == [
                ConfigError(
                    file: testFile, line: 1, column: 12, path: "listeners", message: "expected at least one listener")
            ])
        #expect(loadErrors("listeners:\n  name: pg\n")[0].message == "expected a list of listeners, got a mapping")
    }

    @Test func badDurationSaysWhatWasExpected() {
        let errors = loadErrors(listenerDocument("idle_timeout: 5 seconds\nconnect_timeout: 30"))
        #expect(
            errors == [
                ConfigError(
                    file: testFile, line: 6, column: 19, path: "listeners[0].idle_timeout",
                    message: "expected a duration like 250ms, 5s, 2m or 1h, got \"5 seconds\""),
                ConfigError(
                    file: testFile, line: 7, column: 22, path: "listeners[0].connect_timeout",
                    message: "expected a duration like 250ms, 5s, 2m or 1h, got \"30\" (a unit is required)"),
            ])
    }

    @Test func connectTimeoutMustBePositive() {
        let errors = loadErrors(listenerDocument("connect_timeout: 0s"))
        #expect(
            errors == [
                ConfigError(
                    file: testFile, line: 6, column: 22, path: "listeners[0].connect_timeout",
                    message: "expected a duration more than 0s, got \"0s\"")
            ])
    }

    @Test func duplicateListenerNames() {
        let yaml = """
            listeners:
              - { name: pg, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
              - { name: pg, protocol: tcp, bind: 127.0.0.1:5433, default: { forward: db } }
            target_groups:
              - { name: db, protocol: tcp }
            """
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 3, column: 13, path: "listeners[1].name",
                    message: "duplicate listener name \"pg\" (also listeners[0])")
            ])
    }

    @Test func duplicateGroupNames() {
        let yaml = """
            listeners:
              - { name: pg, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
            target_groups:
              - name: db
                protocol: tcp
              - name: db
                protocol: tcp
            """
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 6, column: 11, path: "target_groups[1].name",
                    message: "duplicate target group name \"db\" (also target_groups[0])")
            ])
    }

    @Test func invalidNames() {
        let yaml = """
            listeners:
              - { name: "my listener", protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
            target_groups:
              - { name: db, protocol: tcp }
            """
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 2, column: 13, path: "listeners[0].name",
                    message: "expected a name of letters, digits, _ . and -, got \"my listener\"")
            ])
    }

    @Test func duplicateYAMLKeysAreReportedAtTheSecondOccurrenceAlongWithOtherErrors() {
        let yaml = """
            listeners:
              - name: pg
                protocol: tcp
                bind: 127.0.0.1:5432
                bind: 127.0.0.1:5433
                default: { forward: db }
            target_groups:
              - { name: db, protocol: tcp, protocol: tcp }
            node: { workers: 0 }
            """
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "5:5 listeners[0].bind", "8:32 target_groups[0].protocol", "9:18 node.workers",
            ])
        #expect(
            errors[0].message == "duplicate key \"bind\" (first at line 4, column 5); "
                + "a key may appear only once in a mapping")
        #expect(errors[1].message.hasPrefix("duplicate key \"protocol\" (first at line 8, column 17)"))
    }

    @Test func duplicateKeysInsideNestedSectionsAreReported() {
        let yaml = groupDocument("health_check:\n  protocol: http\n  path: /a\n  path: /b")
        #expect(positions(yaml) == ["9:7 target_groups[0].health_check.path"])
    }

    @Test func theSameKeyRepeatedThreeTimes() {
        let yaml = "node: { zone: a }\nnode: { zone: b }\nnode: { zone: c }\n" + minimalYAML
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == ["2:1 node", "3:1 node"])
        #expect(errors.allSatisfy { $0.message.hasPrefix("duplicate key \"node\" (first at line 1, column 1)") })
    }

    @Test func duplicateBindAddress() {
        let yaml = """
            listeners:
              - { name: a, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
              - { name: b, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
              - { name: c, protocol: tcp, bind: "*:5432", default: { forward: db } }
            target_groups:
              - { name: db, protocol: tcp }
            """
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 3, column: 37, path: "listeners[1].bind",
                    message: "bind address 127.0.0.1:5432 is already used by listener \"a\" (listeners[0].bind)"),
                ConfigError(
                    file: testFile, line: 4, column: 37, path: "listeners[2].bind",
                    message: "bind address 0.0.0.0:5432 overlaps 127.0.0.1:5432 of listener \"a\" (listeners[0].bind)"),
            ])
    }

    @Test func listenerMayNotBindTheMetricsAddress() {
        let yaml = "control: { metrics: 127.0.0.1:5432 }\n" + minimalYAML
        #expect(
            loadErrors(yaml).map(\.message) == [
                "bind address 127.0.0.1:5432 is already used by control.metrics (control.metrics)"
            ])
    }

    @Test func unknownGroupListsTheDefinedOnes() {
        let yaml = listenerDocument("").replacingOccurrences(of: "forward: db", with: "forward: dbb")
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 5, column: 25, path: "listeners[0].default.forward",
                    message: "unknown target group \"dbb\"; defined groups: db")
            ])
    }

    @Test func groupProtocolMustFitTheListener() {
        let yaml = """
            listeners:
              - name: pg
                protocol: tcp
                bind: 127.0.0.1:5432
                default:
                  forward:
                    - { group: web }
            target_groups:
              - { name: web, protocol: http }
            """
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 7, column: 20, path: "listeners[0].default.forward[0].group",
                    message: "target group \"web\" has protocol http, which does not fit a tcp listener "
                        + "(it needs a tcp, tls or tcp_udp group)")
            ])
    }

    @Test func weightsOutOfRange() {
        let yaml = """
            listeners:
              - name: pg
                protocol: tcp
                bind: 127.0.0.1:5432
                default:
                  forward: [ { group: db, weight: -1 }, { group: db2, weight: 1000 } ]
            target_groups:
              - name: db
                protocol: tcp
                targets: [ { address: 127.0.0.1:9001, weight: 1000 } ]
              - { name: db2, protocol: tcp }
            """
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "6:39 listeners[0].default.forward[0].weight",
                "6:67 listeners[0].default.forward[1].weight",
                "10:51 target_groups[0].targets[0].weight",
            ])
        #expect(
            errors.map(\.message) == [
                "expected a weight from 0 to 999, got -1",
                "expected a weight from 0 to 999, got 1000",
                "expected a weight from 0 to 999, got 1000",
            ])
    }

    @Test func someForwardWeightMustBePositive() {
        let yaml = listenerDocument("").replacingOccurrences(
            of: "forward: db", with: "forward: [ { group: db, weight: 0 } ]")
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 5, column: 25, path: "listeners[0].default.forward",
                    message: "at least one group needs a weight above 0")
            ])
    }

    @Test func integersMustBeYAMLIntegers() {
        let yaml =
            "node: { max_connections: \"5\", workers: 1.5 }\n"
            + groupDocument(
                "targets:\n  - { address: 127.0.0.1:1, weight: true }")
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "1:26 node.max_connections: expected a number of connections, 1 or more, got the string \"5\"",
                "1:40 node.workers: expected auto or a number from 1 to 1024, got 1.5",
                "8:41 target_groups[0].targets[0].weight: expected a weight from 0 to 999, got true",
            ])
    }

    @Test func workersRange() {
        #expect(positions("node: { workers: 1025 }\n" + minimalYAML) == ["1:18 node.workers"])
        #expect(positions("node: { workers: 0 }\n" + minimalYAML) == ["1:18 node.workers"])
        #expect(positions("node: { workers: 1024 }\n" + minimalYAML).isEmpty)
    }

    @Test func duplicateTargetAddressInOneGroup() {
        let yaml = groupDocument(
            """
            targets:
              - { address: 127.0.0.1:9001 }
              - { address: 127.0.0.1:9002, weight: 5000 }
              - { address: "127.0.0.1:9001", weight: 2 }
            """)
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "8:44 target_groups[0].targets[1].weight", "9:20 target_groups[0].targets[2].address",
            ])
        #expect(
            errors[1].message == "duplicate target address 127.0.0.1:9001 in this group "
                + "(also target_groups[0].targets[0].address)")
    }

    @Test func badAddressesSayWhy() {
        let yaml = groupDocument(
            """
            targets:
              - address: 127.0.0.1
              - address: 127.0.0.1:0
              - address: ::1:80
              - address: 0.0.0.0:80
            """)
        let expected = "expected an address like 127.0.0.1:80 or [::1]:80, got"
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.message)" } == [
                "7:18 \(expected) \"127.0.0.1\": the port is missing",
                "8:18 \(expected) \"127.0.0.1:0\": port \"0\" is not a number from 1 to 65535",
                "9:18 \(expected) \"::1:80\": an IPv6 address needs brackets, as in [::1]:80",
                "10:18 a target needs a concrete address, not the wildcard 0.0.0.0:80",
            ])
    }

    @Test func rootMustBeAMapping() {
        #expect(
            loadErrors("- a\n- b\n") == [
                ConfigError(
                    file: testFile, line: 1, column: 1, path: "",
                    message: "expected a mapping with node, control, listeners and target_groups, got a list")
            ])
    }

    @Test func multipleErrorsAreReportedTogetherInFileOrder() {
        let yaml = """
            node: { zone: "a b", shutdown_grace: soon }
            control: { socket: "" }
            listeners:
              - name: pg
                protocl: tcp
                bind: 1.2.3.4
                default: { forward: nowhere }
            target_groups:
              - { name: db, protocol: tcp, algorithm: fastest }
            """
        let errors = loadErrors(yaml)
        #expect(
            errors.map { "\($0.line):\($0.column) \($0.path)" } == [
                "1:15 node.zone", "1:38 node.shutdown_grace", "2:20 control.socket",
                "4:5 listeners[0].protocol", "5:5 listeners[0].protocl", "6:11 listeners[0].bind",
                "7:25 listeners[0].default.forward", "9:43 target_groups[0].algorithm",
            ])
        #expect(errors[4].message.hasPrefix("unknown key \"protocl\" (did you mean \"protocol\"?)"))
        #expect(errors[7].message == "expected round_robin, least_outstanding, random_two or flow_hash, got \"fastest\"")
        let description = ConfigErrors(errors).description.split(separator: "\n")
        #expect(description.count == 8)
        #expect(
            description[0] == "test.yaml:1:15: node.zone: expected a name of letters, digits, _ . and -, got \"a b\"")
    }

    @Test func forwardShapes() {
        let base = listenerDocument("")
        let cases: [(String, String)] = [
            ("{ forward: [] }", "expected at least one { group: NAME, weight: N }"),
            ("{}", "missing required key \"forward\" (the group to forward to)"),
            ("db", "expected an action like { forward: GROUP }, got \"db\""),
            ("{ forward: { group: db } }", "expected a group name or a list of { group: NAME, weight: N }, got a mapping"),
            ("{ forward: [ db ] }", "expected a mapping like { group: NAME, weight: N }, got \"db\""),
        ]
        for (action, message) in cases {
            let yaml = base.replacingOccurrences(of: "{ forward: db }", with: action)
            #expect(loadErrors(yaml).map(\.message) == [message], "default: \(action)")
        }
    }

    @Test func groupListedTwiceInOneForward() {
        let yaml = listenerDocument("").replacingOccurrences(
            of: "{ forward: db }", with: "{ forward: [ { group: db }, { group: db } ] }")
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 5, column: 51, path: "listeners[0].default.forward[1].group",
                    message: "group \"db\" is listed twice (also listeners[0].default.forward[0].group)")
            ])
    }

    @Test func controlSection() {
        let long = "/" + String(repeating: "s", count: 110)
        let yaml = "control: { socket: \(long), metrics: \"*\", state: \"\" }\n" + minimalYAML
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "1:20 control.socket: a Unix socket path may have at most 107 bytes, this one has 111",
                "1:142 control.metrics: expected an address like 127.0.0.1:80 or [::1]:80, got \"*\": "
                    + "the port is missing",
                "1:154 control.state: expected a file path, got \"\"",
            ])
    }

    @Test func targetsMustBeAList() {
        #expect(
            loadErrors(groupDocument("targets:")).map(\.message) == [
                "expected a list of targets (use [] for none), got nothing"
            ])
        #expect(
            loadErrors(groupDocument("targets: [ 127.0.0.1:80 ]")).map(\.message) == [
                "expected a target mapping like { address: 10.0.0.5:8080 }, got \"127.0.0.1:80\""
            ])
    }
}
