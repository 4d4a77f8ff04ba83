internal import Yams

/// What a group's `health_check` key says: checks with these values, or `off` (`check == nil`).
struct HealthCheckSetting {
    var check: HealthCheckConfig?
}

/// `target_groups[i].health_check:` (SPEC §2, §4).
extension ConfigBuilder {
    /// The group's checks: the defaults for its protocol when the key is absent, `off`, or a
    /// mapping whose missing keys take the defaults. `nil` after an error.
    mutating func healthCheck(in group: YAMLMapping, groupProtocol: ProtocolKind?) -> HealthCheckSetting? {
        let defaultProtocol: HealthCheckProtocol = groupProtocol.map { HealthCheckConfig.default(for: $0).protocolKind }
            ?? .tcp
        guard let value = group["health_check"] else {
            return HealthCheckSetting(check: HealthCheckConfig(protocolKind: defaultProtocol))
        }
        let expected = "off or a health_check mapping such as { protocol: http, path: /healthz }"
        switch value.node {
        case .scalar(let scalar) where scalar.string == "off":
            return HealthCheckSetting(check: nil)
        case .mapping:
            break
        default:
            reader.error("expected \(expected), got \(reader.describe(value.node))", at: value)
            return nil
        }
        guard let mapping = reader.mapping(value, supported: Schema.healthCheckKeys, expected: expected) else {
            return nil
        }
        let before = reader.errors.count
        var check = HealthCheckConfig(protocolKind: defaultProtocol)

        if let protocolValue = mapping["protocol"] {
            check.protocolKind =
                healthCheckProtocol(protocolValue, key: mapping.keyNode("protocol")) ?? check.protocolKind
        }
        if check.protocolKind == .tcp {
            for key in Schema.httpHealthCheckKeys {
                if let keyValue = mapping.keyNode(key) {
                    reader.error(
                        "\"\(key)\" is used only by http health checks; this check's protocol is tcp", at: keyValue)
                }
            }
        }
        if let pathValue = mapping["path"], let path = healthCheckPath(pathValue) {
            check.path = path
        }
        if let portValue = mapping["port"] {
            if portValue.node.scalar?.string == "traffic-port" {
                check.port = nil
            } else {
                check.port = reader.int(portValue, in: 1...65535, expected: "traffic-port or a port from 1 to 65535")
            }
        }
        let beforeTimes = reader.errors.count
        var intervalText = "the default interval 5s"
        if let intervalValue = mapping["interval"], let nanos = reader.duration(intervalValue) {
            if nanos >= Schema.minHealthCheckInterval {
                check.interval = nanos
                intervalText = "the interval \(intervalValue.node.scalar?.string ?? "")"
            } else {
                reader.error(
                    "expected a duration of 100ms or more, got \(reader.describe(intervalValue.node))",
                    at: intervalValue)
            }
        }
        if let timeoutValue = mapping["timeout"], let nanos = positiveDuration(timeoutValue) {
            check.timeout = nanos
        }
        // Compared only when both read well, so a bad value is not reported twice.
        if reader.errors.count == beforeTimes, check.timeout >= check.interval {
            // Reported at the timeout when given, else at the interval that made it too long.
            if let at = mapping["timeout"] ?? mapping["interval"] {
                let timeoutText =
                    mapping["timeout"]?.node.scalar?.string ?? "the default timeout 2s"
                reader.error(
                    "expected a timeout shorter than \(intervalText) (timeout >= interval), got \(timeoutText)",
                    at: at)
            }
        }
        let thresholds = "a number from \(Schema.healthThresholds.lowerBound) to \(Schema.healthThresholds.upperBound)"
        if let healthyValue = mapping["healthy_threshold"],
            let count = reader.int(healthyValue, in: Schema.healthThresholds, expected: thresholds)
        {
            check.healthyThreshold = count
        }
        if let unhealthyValue = mapping["unhealthy_threshold"],
            let count = reader.int(unhealthyValue, in: Schema.healthThresholds, expected: thresholds)
        {
            check.unhealthyThreshold = count
        }
        if let matcherValue = mapping["matcher"], let ranges = matcher(matcherValue) {
            check.matcher = ranges
        }
        guard reader.errors.count == before else { return nil }
        return HealthCheckSetting(check: check)
    }

    /// `health_check.protocol: tcp | http` (`https` arrives with TLS).
    private mutating func healthCheckProtocol(_ value: YAMLValue, key: YAMLValue?) -> HealthCheckProtocol? {
        guard let text = reader.string(value, expected: "tcp or http") else { return nil }
        if let kind = HealthCheckProtocol(rawValue: text) { return kind }
        if text == "https", let key {
            reader.notSupportedYet(
                key, key: "protocol", shown: text, reason: LaterFeature.tlsTermination.reason, supported: "tcp, http")
        } else {
            reader.error("expected tcp, http or https, got \(reader.quoted(text))", at: value)
        }
        return nil
    }

    /// An origin-form path: `/` and then visible ASCII, no `#`.
    private mutating func healthCheckPath(_ value: YAMLValue) -> String? {
        let expected = "a path starting with /, such as /healthz"
        guard let text = reader.string(value, expected: expected) else { return nil }
        let valid =
            text.utf8.first == UInt8(ascii: "/")
            && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }
        guard valid else {
            reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
            return nil
        }
        return text
    }

    /// `matcher: "200,204,300-399"` (a bare `200` also reads) → `[200...200, 204...204, 300...399]`.
    private mutating func matcher(_ value: YAMLValue) -> [ClosedRange<Int>]? {
        let expected =
            "status codes and ranges from \(Schema.statusCodes.lowerBound) to \(Schema.statusCodes.upperBound) "
            + "such as \"200,204,300-399\""
        guard let text = reader.string(value, expected: expected) else { return nil }
        guard let ranges = Self.parseMatcher(text) else {
            reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
            return nil
        }
        return ranges
    }

    /// The ranges of a matcher text, or `nil` if any part is not a code or an ascending range
    /// of codes within `Schema.statusCodes`.
    static func parseMatcher(_ text: String) -> [ClosedRange<Int>]? {
        var ranges: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2 else { return nil }
            var numbers: [Int] = []
            for bound in bounds {
                let digits = bound.trimmingSpaces
                guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let number = Int(digits),
                    Schema.statusCodes.contains(number)
                else { return nil }
                numbers.append(number)
            }
            guard let low = numbers.first, let high = numbers.last, low <= high else { return nil }
            ranges.append(low...high)
        }
        return ranges
    }
}

extension Substring {
    /// Without leading and trailing spaces (matchers may be written `"200, 204"`).
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
