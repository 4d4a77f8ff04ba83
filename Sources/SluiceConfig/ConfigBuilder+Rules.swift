internal import Yams

/// `rules:` of http listeners and their `when:` conditions (SPEC §2, §3).
extension ConfigBuilder {
    /// The rules sorted by priority; `nil` after any error.
    mutating func ruleConfigs(_ value: YAMLValue, listenerProtocol: ProtocolKind) -> [RuleConfig]? {
        guard let items = reader.sequence(value, expected: "a list of rules", nullIsEmpty: true) else { return nil }
        var rules: [RuleConfig] = []
        var priorities: [Int: String] = [:]
        var valid = true
        for item in items {
            guard
                let mapping = reader.mapping(
                    item, supported: Schema.ruleKeys, expected: "a rule mapping with priority, when and then")
            else {
                valid = false
                continue
            }
            let before = reader.errors.count
            var priority: Int?
            let expectedPriority =
                "a priority from \(RuleConfig.priorities.lowerBound) to \(RuleConfig.priorities.upperBound)"
            if let value = reader.required("priority", in: mapping, expected: expectedPriority),
                let number = reader.int(value, in: RuleConfig.priorities, expected: expectedPriority)
            {
                if let other = priorities[number] {
                    reader.error("duplicate priority \(number) in this listener (also \(other))", at: value)
                } else {
                    priorities[number] = value.path
                    priority = number
                }
            }
            var conditions: RuleConditions?
            if let value = reader.required("when", in: mapping, expected: "the conditions, like { path: [\"/api/*\"] }") {
                conditions = self.conditions(value)
            }
            var action: ListenerAction?
            if let value = reader.required("then", in: mapping, expected: "an action like { forward: GROUP }") {
                action = self.action(value, listenerProtocol: listenerProtocol)
            }
            guard reader.errors.count == before, let priority, let conditions, let action else {
                valid = false
                continue
            }
            rules.append(RuleConfig(priority: priority, conditions: conditions, action: action))
        }
        guard valid else { return nil }
        return rules.sorted { $0.priority < $1.priority }
    }

    /// `when:` — at least one of host, path, method, header, query and source.
    private mutating func conditions(_ value: YAMLValue) -> RuleConditions? {
        let before = reader.errors.count
        guard
            let mapping = reader.mapping(
                value, supported: Schema.conditionKeys,
                expected: "a mapping of conditions (host, path, method, header, query, source)")
        else { return nil }
        var conditions = RuleConditions()
        if let value = mapping["host"] {
            conditions.host = patterns(value, expected: "a host name pattern like *.example.com") { text in
                text.utf8.count <= Schema.maxPatternBytes
                    && text.utf8.allSatisfy { byte in
                        HTTPSyntax.isTokenByte(byte) && byte != UInt8(ascii: "|") || "?[]:".utf8.contains(byte)
                    }
            }.map { $0.lowercased() }
        }
        if let value = mapping["path"] {
            conditions.path = patterns(value, expected: "a path pattern like /api/* (starting with / or *)") { text in
                text.utf8.count <= Schema.maxPatternBytes && (text.hasPrefix("/") || text.hasPrefix("*"))
                    && text.utf8.allSatisfy { (0x21...0x7E).contains($0) && $0 != UInt8(ascii: "#") }
            }
        }
        if let value = mapping["method"] {
            conditions.method = patterns(value, expected: "an HTTP method like GET") { text in
                text.utf8.count <= Schema.maxRuleTextBytes && HTTPSyntax.isToken(text)
            }
        }
        if let value = mapping["header"] {
            conditions.header = namedPatterns(
                value, what: "header", expectedName: "a header name like x-canary",
                validName: { $0.utf8.count <= Schema.maxRuleTextBytes && HTTPSyntax.isToken($0) }
            ).map { HeaderCondition(name: $0.name.lowercased(), values: $0.values) }
        }
        if let value = mapping["query"] {
            conditions.query = namedPatterns(
                value, what: "query key", expectedName: "a query key",
                validName: { !$0.isEmpty && $0.utf8.count <= Schema.maxRuleTextBytes && HTTPSyntax.isFieldText($0) }
            ).map { QueryCondition(key: $0.name, values: $0.values) }
        }
        if let value = mapping["source"] {
            conditions.source = sources(value)
        }
        guard reader.errors.count == before else { return nil }
        guard !conditions.isEmpty else {
            reader.error(
                "expected at least one condition (host, path, method, header, query or source); "
                    + "a rule that always applies belongs in the listener's default", at: value)
            return nil
        }
        return conditions
    }

    /// The values of one condition: a list of at least one, or a bare scalar as a list of one.
    /// Values failing `valid` are reported with `expected`.
    private mutating func patterns(
        _ value: YAMLValue, expected: String, allowEmpty: Bool = false, valid: (String) -> Bool
    ) -> [String] {
        patternItems(value, expected: expected, allowEmpty: allowEmpty, valid: valid).map(\.text)
    }

    /// Same, with the node of each value (for later checks that report at the value).
    private mutating func patternItems(
        _ value: YAMLValue, expected: String, allowEmpty: Bool = false, valid: (String) -> Bool
    ) -> [(text: String, item: YAMLValue)] {
        let items: [YAMLValue]
        switch value.node {
        case .scalar where reader.kind(value.node) != .null:
            items = [value]
        case .sequence:
            items = reader.sequence(value, expected: "a list of values") ?? []
            if items.isEmpty {
                reader.error("expected at least one value (\(expected)), got an empty list", at: value)
            }
        default:
            reader.error("expected a list of values (\(expected)), got \(reader.describe(value.node))", at: value)
            return []
        }
        var result: [(text: String, item: YAMLValue)] = []
        for item in items {
            guard let text = reader.string(item, expected: expected) else { continue }
            guard (allowEmpty || !text.isEmpty) && valid(text) else {
                reader.error("expected \(expected), got \(reader.quoted(text))", at: item)
                continue
            }
            result.append((text, item))
        }
        return result
    }

    /// `header:` and `query:` — a mapping of name to values; names must differ (for headers,
    /// regardless of case).
    private mutating func namedPatterns(
        _ value: YAMLValue, what: String, expectedName: String, validName: (String) -> Bool
    ) -> [(name: String, values: [String])] {
        guard let entries = reader.entries(value, expected: "a mapping of \(what) to values") else { return [] }
        guard !entries.isEmpty else {
            reader.error("expected at least one \(what), got an empty mapping", at: value)
            return []
        }
        var result: [(name: String, values: [String])] = []
        var seen: [String: String] = [:]
        for entry in entries {
            guard validName(entry.key) else {
                reader.error("expected \(expectedName), got \(reader.quoted(entry.key))", at: entry.keyValue)
                continue
            }
            let folded = entry.key.lowercased()
            if let other = seen[folded] {
                reader.error("\(what) \(reader.quoted(entry.key)) is listed twice (also \(other))", at: entry.keyValue)
                continue
            }
            seen[folded] = entry.keyValue.path
            let values = patterns(entry.value, expected: "a \(what == "header" ? "header" : "query") value pattern",
                allowEmpty: true, valid: { $0.utf8.count <= Schema.maxRuleTextBytes && HTTPSyntax.isFieldText($0) })
            result.append((entry.key, values))
        }
        return result
    }

    /// `source:` — CIDRs of the client address.
    private mutating func sources(_ value: YAMLValue) -> [CIDR] {
        let expected = "a CIDR like 10.0.0.0/8 or ::1/128"
        var result: [CIDR] = []
        for (text, item) in patternItems(value, expected: expected, valid: { _ in true }) {
            switch CIDRParser.parse(text) {
            case .success(let cidr):
                result.append(cidr)
            case .failure(let problem):
                reader.error("expected \(expected), got \(reader.quoted(text)): \(problem.message)", at: item)
            }
        }
        return result
    }
}
