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
        checkCrossZone(group)
        checkSlowStart(group)
        checkHealthCheck(group)

        var targets: [TargetConfig]? = []
        if let value = group["targets"] {
            targets = targetConfigs(value, nodeZone: nodeZone)
        }
        guard reader.errors.count == before, let name, let kind, let algorithm, let targets else { return nil }
        return TargetGroupConfig(name: name, protocolKind: kind, algorithm: algorithm, targets: targets)
    }

    /// `algorithm:`, defaulting to `flow_hash` for L4 groups and `round_robin` for HTTP ones.
    private mutating func algorithm(in group: YAMLMapping, protocolKind: ProtocolKind?) -> AlgorithmKind? {
        guard let value = group["algorithm"] else {
            return protocolKind == .http || protocolKind == .https ? .roundRobin : .flowHash
        }
        guard let text = reader.string(value, expected: "an algorithm") else { return nil }
        let supported = Schema.supportedAlgorithms.map(\.rawValue)
        if let kind = AlgorithmKind(rawValue: text), Schema.supportedAlgorithms.contains(kind) { return kind }
        if let kind = AlgorithmKind(rawValue: text), Schema.laterAlgorithms.contains(kind),
            let key = group.keyNode("algorithm")
        {
            reader.notSupportedYet(
                key, key: "algorithm", shown: text,
                reason: LaterFeature.applicationLoadBalancing.reason,
                supported: supported.joined(separator: ", "))
            return nil
        }
        reader.error("expected \(orList(supported)), got \(reader.quoted(text))", at: value)
        return nil
    }

    /// `cross_zone:` — only `true` (every healthy target shares the load) is implemented.
    private mutating func checkCrossZone(_ group: YAMLMapping) {
        guard let value = group["cross_zone"], let key = group.keyNode("cross_zone") else { return }
        switch reader.kind(value.node) {
        case .bool(true):
            return
        case .bool(false):
            reader.notSupportedYet(
                key, key: "cross_zone", shown: "false", reason: LaterFeature.zoneRouting.reason,
                supported: "true")
        case .string where value.node.scalar?.string == "prefer_local":
            reader.notSupportedYet(
                key, key: "cross_zone", shown: "prefer_local",
                reason: LaterFeature.zoneRouting.reason, supported: "true")
        default:
            reader.error("expected true, false or prefer_local, got \(reader.describe(value.node))", at: value)
        }
    }

    /// `slow_start:` — only `0s` (off) is implemented.
    private mutating func checkSlowStart(_ group: YAMLMapping) {
        guard let value = group["slow_start"], let key = group.keyNode("slow_start"),
            let nanos = reader.duration(value), nanos != 0
        else { return }
        reader.notSupportedYet(
            key, key: "slow_start", shown: value.node.scalar?.string,
            reason: LaterFeature.slowStart.reason, supported: "0s")
    }

    /// `health_check:` — only `off` is implemented (targets are `unavailable` and get traffic).
    private mutating func checkHealthCheck(_ group: YAMLMapping) {
        guard let value = group["health_check"], let key = group.keyNode("health_check") else { return }
        switch value.node {
        case .scalar(let scalar) where scalar.string == "off":
            return
        case .mapping:
            reader.notSupportedYet(
                key, key: "health_check", reason: LaterFeature.healthChecks.reason,
                supported: "off")
        default:
            reader.error("expected off or a health_check mapping, got \(reader.describe(value.node))", at: value)
        }
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
