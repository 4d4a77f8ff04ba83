internal import Yams

/// What a group's `health_check` key says: checks with these values, or `off` (`check == nil`).
struct HealthCheckSetting {
    var check: HealthCheckConfig?
}

/// `target_groups[i].health_check:` (SPEC §2, §3 Connections, §4).
///
/// An http or https check of a group with `protocol_version: grpc` is a gRPC health check
/// (`grpc.health.v1.Health/Check`): `path` is then the service name (any text, default empty)
/// and `matcher` lists gRPC status codes 0 ... 16 (default `"0"`). https checks speak TLS as the
/// group's `tls` says (the `GroupTLSConfig` defaults on groups without one).
extension ConfigBuilder {
    /// The group's checks: the defaults for its protocol when the key is absent, `off`, or a
    /// mapping whose missing keys take the defaults. `nil` after an error.
    mutating func healthCheck(in group: YAMLMapping, groupProtocol: ProtocolKind?, protocolVersion: ProtocolVersion)
        -> HealthCheckSetting?
    {
        let defaultCheck =
            groupProtocol.map { HealthCheckConfig.default(for: $0, protocolVersion: protocolVersion) }
            ?? HealthCheckConfig(protocolKind: .tcp)
        guard let value = group["health_check"] else {
            return HealthCheckSetting(check: defaultCheck)
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
        var protocolKind = defaultCheck.protocolKind
        if let protocolValue = mapping["protocol"] {
            protocolKind = healthCheckProtocol(protocolValue) ?? protocolKind
        }
        var check = HealthCheckConfig(protocolKind: protocolKind)
        if protocolVersion == .grpc, protocolKind != .tcp {
            check.grpc = true
            check.path = ""
            check.matcher = HealthCheckConfig.defaultGRPCMatcher
        }
        if check.protocolKind == .tcp {
            for key in Schema.httpHealthCheckKeys {
                if let keyValue = mapping.keyNode(key) {
                    reader.error(
                        "\"\(key)\" is used only by http and https health checks; this check's protocol is tcp",
                        at: keyValue)
                }
            }
        }
        if let pathValue = mapping["path"] {
            if check.grpc {
                check.path = reader.string(pathValue, expected: "a gRPC service name (may be empty)") ?? check.path
            } else if let path = healthCheckPath(pathValue) {
                check.path = path
            }
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
        if let matcherValue = mapping["matcher"], let ranges = matcher(matcherValue, grpc: check.grpc) {
            check.matcher = ranges
        }
        guard reader.errors.count == before else { return nil }
        return HealthCheckSetting(check: check)
    }

    /// `health_check.protocol: tcp | http | https`.
    private mutating func healthCheckProtocol(_ value: YAMLValue) -> HealthCheckProtocol? {
        let expected = orList(HealthCheckProtocol.allCases.map(\.rawValue))
        guard let text = reader.string(value, expected: expected) else { return nil }
        guard let kind = HealthCheckProtocol(rawValue: text) else {
            reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
            return nil
        }
        return kind
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

    /// `matcher: "200,204,300-399"` (a bare `200` also reads) → `[200...200, 204...204, 300...399]`;
    /// for a gRPC check, gRPC status codes such as `"0,2-4"`.
    private mutating func matcher(_ value: YAMLValue, grpc: Bool) -> [ClosedRange<Int>]? {
        let codes = grpc ? Schema.grpcStatusCodes : Schema.statusCodes
        let expected =
            grpc
            ? "gRPC status codes and ranges from \(codes.lowerBound) to \(codes.upperBound) such as \"0\" or \"0,2-4\""
            : "status codes and ranges from \(codes.lowerBound) to \(codes.upperBound) such as \"200,204,300-399\""
        guard let text = reader.string(value, expected: expected) else { return nil }
        guard let ranges = Self.parseMatcher(text, codes: codes) else {
            reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
            return nil
        }
        return ranges
    }

    /// The ranges of a matcher text, or `nil` if any part is not a code or an ascending range
    /// of codes within `codes`.
    static func parseMatcher(_ text: String, codes: ClosedRange<Int> = Schema.statusCodes) -> [ClosedRange<Int>]? {
        var ranges: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2 else { return nil }
            var numbers: [Int] = []
            for bound in bounds {
                let digits = bound.trimmingSpaces
                guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let number = Int(digits),
                    codes.contains(number)
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
