internal import Yams

/// `target_groups:` and their targets.
extension ConfigBuilder {
    /// The groups in file order; registers every named group in `groups` (even one with
    /// errors, so listeners that forward to it are not also told it is unknown).
    mutating func targetGroupConfigs(_ value: YAMLValue?, nodeZone: String) -> [TargetGroupConfig]? {
        guard let value else { return [] }
        guard let items = reader.sequence(value, expected: "a list of target groups", nullIsEmpty: true) else {
            return nil
        }
        var result: [TargetGroupConfig] = []
        var valid = true
        for (index, item) in items.enumerated() {
            if let group = targetGroupConfig(item, index: index, nodeZone: nodeZone) {
                result.append(group)
            } else {
                valid = false
            }
        }
        return valid ? result : nil
    }

    private mutating func targetGroupConfig(_ item: YAMLValue, index: Int, nodeZone: String) -> TargetGroupConfig? {
        guard
            let group = reader.mapping(
                item, supported: Schema.groupKeys, later: Schema.groupLater.map(\.key),
                expected: "a target group mapping with name, protocol and targets")
        else { return nil }
        let before = reader.errors.count
        reportLater(group, Schema.groupLater)

        var name: String?
        if let value = reader.required("name", in: group, expected: "the group's name") {
            name = reader.name(value)
            if let name {
                if let other = groups[name] {
                    reader.error("duplicate target group name \"\(name)\" (also \(other.path))", at: value)
                } else {
                    groups[name] = GroupEntry(index: index, path: item.path, protocolKind: nil)
                    groupOrder.append(name)
                }
            }
        }
        let kind = protocolKind(in: group)
        if let name, groups[name]?.index == index { groups[name]?.protocolKind = kind }

        let algorithm = self.algorithm(in: group, protocolKind: kind)
        let hashKey = self.hashKey(in: group, algorithm: algorithm)
        let stickiness = self.stickiness(in: group, protocolKind: kind)
        let crossZone = self.crossZone(in: group)
        let slowStart = self.slowStart(in: group)
        let deregistrationDelay = self.deregistrationDelay(in: group)
        let minHealthy = self.minHealthy(in: group)
        let tls = groupTLS(in: group, protocolKind: kind)
        let protocolVersion = self.protocolVersion(in: group, protocolKind: kind)
        let healthCheck = self.healthCheck(in: group, groupProtocol: kind, protocolVersion: protocolVersion ?? .http1)
        let proxyProtocol = kind.flatMap { proxyProtocolSetting(group, kind: $0, owners: "groups") }
        let surge = self.surge(in: group, protocolKind: kind)
        let scaling = scalingConfig(in: group)

        var targets: [TargetConfig]? = []
        if let value = group["targets"] {
            targets = targetConfigs(value, nodeZone: nodeZone)
        }
        guard reader.errors.count == before, let name, let kind, let algorithm, let targets, let crossZone,
            let slowStart, let deregistrationDelay, let minHealthy, let healthCheck, let protocolVersion, let surge, let scaling
        else { return nil }
        var config = TargetGroupConfig(
            name: name, protocolKind: kind, algorithm: algorithm, targets: targets, hashKey: hashKey,
            stickiness: stickiness, healthCheck: healthCheck.check, minHealthy: minHealthy,
            deregistrationDelay: deregistrationDelay, slowStart: slowStart, crossZone: crossZone, tls: tls,
            protocolVersion: protocolVersion, proxyProtocol: proxyProtocol)
        (config.maxPerTarget, config.surgeQueue) = surge
        config.scaling = scaling
        return config
    }

    /// `algorithm:`, defaulting to `flow_hash` for L4 groups and `round_robin` for HTTP ones.
    private mutating func algorithm(in group: YAMLMapping, protocolKind: ProtocolKind?) -> AlgorithmKind? {
        let isHTTP = protocolKind.map(Schema.isHTTP) ?? false
        guard let value = group["algorithm"] else { return isHTTP ? .roundRobin : .flowHash }
        guard let text = reader.string(value, expected: "an algorithm") else { return nil }
        let allowed = Schema.algorithms(for: protocolKind)
        guard let kind = AlgorithmKind(rawValue: text) else {
            reader.error("expected \(orList(allowed.map(\.rawValue))), got \(reader.quoted(text))", at: value)
            return nil
        }
        guard !allowed.contains(kind), let protocolKind else { return kind }
        let fitting = "\(protocolKind.rawValue) groups use \(orList(allowed.map(\.rawValue)))"
        switch kind {
        case .flowHash:
            reader.error(
                "flow_hash hashes connections and does not fit an \(protocolKind.rawValue) group; \(fitting)",
                at: value)
        default:
            reader.error(
                "\(text) needs an http group, this one's protocol is \(protocolKind.rawValue); \(fitting)", at: value)
        }
        return nil
    }

    /// `hash_key: { header: NAME }` or `{ cookie: NAME }`: required by `header_hash` and
    /// `cookie_hash` (matching the algorithm), refused with any other algorithm.
    private mutating func hashKey(in group: YAMLMapping, algorithm: AlgorithmKind?) -> HashKey? {
        let wanted: String? =
            switch algorithm {
            case .headerHash: "header"
            case .cookieHash: "cookie"
            default: nil
            }
        guard let value = group["hash_key"] else {
            if let wanted, let algorithm {
                _ = reader.required(
                    "hash_key", in: group, expected: "\(algorithm.rawValue) hashes on { \(wanted): NAME }")
            }
            return nil
        }
        if let algorithm, wanted == nil, let key = group.keyNode("hash_key") {
            reader.error(
                "\"hash_key\" is used only by header_hash and cookie_hash; this group's algorithm is "
                    + "\(algorithm.rawValue)", at: key)
            return nil
        }
        let before = reader.errors.count
        guard
            let mapping = reader.mapping(
                value, supported: Schema.hashKeyKeys, expected: "{ header: NAME } or { cookie: NAME }")
        else { return nil }
        let present = Schema.hashKeyKeys.filter { mapping[$0] != nil }
        guard present.count == 1, let kind = present.first, let nameValue = mapping[kind] else {
            // Unknown keys are reported already.
            guard reader.errors.count == before else { return nil }
            reader.error(
                "expected exactly one of header or cookie, as in { header: x-user-id }, got "
                    + (present.isEmpty ? "neither" : "both"), at: value)
            return nil
        }
        let expected = "a \(kind) name"
        guard let name = reader.string(nameValue, expected: expected) else { return nil }
        guard HTTPSyntax.isToken(name) else {
            reader.error("expected \(expected), got \(reader.quoted(name))", at: nameValue)
            return nil
        }
        if let wanted, let algorithm, kind != wanted, let key = mapping.keyNode(kind) {
            reader.error("\(algorithm.rawValue) hashes on a \(wanted), as in { \(wanted): NAME }, not a \(kind)",
                at: key)
            return nil
        }
        return kind == "header" ? .header(name.lowercased()) : .cookie(name)
    }

    /// `stickiness: { cookie: NAME, duration: 1h }` — http groups only.
    private mutating func stickiness(in group: YAMLMapping, protocolKind: ProtocolKind?) -> Stickiness? {
        guard let value = group["stickiness"] else { return nil }
        if let protocolKind, !Schema.isHTTP(protocolKind), let key = group.keyNode("stickiness") {
            reader.error(
                "\"stickiness\" works per HTTP request and needs an http group; this group's protocol is "
                    + "\(protocolKind.rawValue)", at: key)
            return nil
        }
        guard
            let mapping = reader.mapping(
                value, supported: Schema.stickinessKeys, expected: "a mapping like { cookie: SLUICE, duration: 1h }")
        else { return nil }
        let before = reader.errors.count
        var cookie: String?
        if let nameValue = reader.required("cookie", in: mapping, expected: "the name of the cookie Sluice sets"),
            let name = reader.string(nameValue, expected: "a cookie name")
        {
            if HTTPSyntax.isToken(name) {
                cookie = name
            } else {
                reader.error("expected a cookie name, got \(reader.quoted(name))", at: nameValue)
            }
        }
        var duration = Stickiness.defaultDuration
        if let durationValue = mapping["duration"], let nanos = reader.duration(durationValue) {
            if Schema.stickinessDurations.contains(nanos) {
                duration = nanos
            } else {
                reader.error(
                    "expected a duration from 1s to 7 days (168h), got \(reader.describe(durationValue.node))",
                    at: durationValue)
            }
        }
        guard reader.errors.count == before, let cookie else { return nil }
        return Stickiness(cookie: cookie, duration: duration)
    }

    /// `cross_zone: true | false | prefer_local`, default `true`; `nil` after an error.
    private mutating func crossZone(in group: YAMLMapping) -> CrossZone? {
        guard let value = group["cross_zone"] else { return .enabled }
        switch reader.kind(value.node) {
        case .bool(true): return .enabled
        case .bool(false): return .disabled
        case .string where value.node.scalar?.string == CrossZone.preferLocal.rawValue: return .preferLocal
        default:
            reader.error("expected true, false or prefer_local, got \(reader.describe(value.node))", at: value)
            return nil
        }
    }

    /// `slow_start:` — `0s` (off, the default) or 30s ... 15m; `nil` after an error.
    private mutating func slowStart(in group: YAMLMapping) -> UInt64? {
        guard let value = group["slow_start"] else { return 0 }
        guard let nanos = reader.duration(value) else { return nil }
        guard nanos == 0 || Schema.slowStartWindows.contains(nanos) else {
            reader.error(
                "expected 0s (off) or a duration from 30s to 15m, got \(reader.describe(value.node))", at: value)
            return nil
        }
        return nanos
    }

    /// `deregistration_delay:` — 0s ... 1h, default 30s; `nil` after an error.
    private mutating func deregistrationDelay(in group: YAMLMapping) -> UInt64? {
        guard let value = group["deregistration_delay"] else { return TargetGroupConfig.defaultDeregistrationDelay }
        guard let nanos = reader.duration(value) else { return nil }
        guard Schema.deregistrationDelays.contains(nanos) else {
            reader.error("expected a duration from 0s to 1h, got \(reader.describe(value.node))", at: value)
            return nil
        }
        return nanos
    }

    /// `min_healthy:` — a count (`2`) or a percentage of registered targets (`"50%"`),
    /// default 1; `nil` after an error.
    private mutating func minHealthy(in group: YAMLMapping) -> MinHealthy? {
        guard let value = group["min_healthy"] else { return .count(1) }
        let expected =
            "a count of targets from \(Schema.minHealthyCounts.lowerBound) or a percentage from "
            + "\(Schema.minHealthyPercents.lowerBound)% to \(Schema.minHealthyPercents.upperBound)% such as \"50%\""
        if case .int(let count) = reader.kind(value.node) {
            guard Schema.minHealthyCounts.contains(count) else {
                reader.error("expected \(expected), got \(count)", at: value)
                return nil
            }
            return .count(count)
        }
        guard let text = reader.string(value, expected: expected) else { return nil }
        guard text.hasSuffix("%"), let percent = Int(text.dropLast()), text.first != "+",
            Schema.minHealthyPercents.contains(percent)
        else {
            reader.error("expected \(expected), got \(reader.describe(value.node))", at: value)
            return nil
        }
        return .percent(percent)
    }

    /// `targets:` — may be empty; addresses must differ within the group.
    private mutating func targetConfigs(_ value: YAMLValue, nodeZone: String) -> [TargetConfig]? {
        guard let items = reader.sequence(value, expected: "a list of targets (use [] for none)") else { return nil }
        var result: [TargetConfig] = []
        var seen: [SocketAddressSpec: String] = [:]
        var valid = true
        for item in items {
            let (target, address) = targetConfig(item, nodeZone: nodeZone)
            // Repeats are checked whenever the address itself is fine, even if the target is not.
            if let address {
                let (spec, value) = address
                if let other = seen[spec] {
                    reader.error("duplicate target address \(spec) in this group (also \(other))", at: value)
                    valid = false
                } else {
                    seen[spec] = value.path
                }
            }
            if let target { result.append(target) } else { valid = false }
        }
        return valid ? result : nil
    }

    /// The target (`nil` after an error) and, whenever it parsed, its address with the value
    /// node it came from (where a repeated address is reported).
    private mutating func targetConfig(_ item: YAMLValue, nodeZone: String)
        -> (TargetConfig?, (SocketAddressSpec, YAMLValue)?)
    {
        guard
            let target = reader.mapping(
                item, supported: Schema.targetKeys,
                expected: "a target mapping like { address: 10.0.0.5:8080 }")
        else { return (nil, nil) }
        let before = reader.errors.count
        var address: SocketAddressSpec?
        let addressValue = reader.required("address", in: target, expected: "the target's HOST:PORT")
        if let value = addressValue {
            address = reader.address(value)
            if let spec = address, spec.host == "0.0.0.0" || spec.host == "::" {
                reader.error("a target needs a concrete address, not the wildcard \(spec)", at: value)
            }
        }
        var zone = nodeZone
        if let value = target["zone"] {
            zone = reader.name(value) ?? zone
        }
        var weight = 1
        if let value = target["weight"] {
            weight = reader.int(value, in: Schema.weights, expected: "a weight from 0 to 999") ?? weight
        }
        let parsed = address.flatMap { spec in addressValue.map { (spec, $0) } }
        guard reader.errors.count == before, let address else { return (nil, parsed) }
        return (TargetConfig(address: address, zone: zone, weight: weight), parsed)
    }
}
