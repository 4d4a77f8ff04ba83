internal import Yams

/// `listeners:` and their `default` action. Runs after the target groups, which `forward`
/// refers to by name.
extension ConfigBuilder {
    mutating func listenerConfigs(_ value: YAMLValue) -> [ListenerConfig]? {
        guard let items = reader.sequence(value, expected: "a list of listeners") else { return nil }
        guard !items.isEmpty else {
            reader.error("expected at least one listener", at: value)
            return nil
        }
        var result: [ListenerConfig] = []
        var names: [String: String] = [:]
        var valid = true
        for item in items {
            if let listener = listenerConfig(item, names: &names) {
                result.append(listener)
            } else {
                valid = false
            }
        }
        return valid ? result : nil
    }

    private mutating func listenerConfig(_ item: YAMLValue, names: inout [String: String]) -> ListenerConfig? {
        guard
            let listener = reader.mapping(
                item, supported: Schema.listenerKeys,
                later: Schema.listenerLater.map(\.key),
                expected: "a listener mapping with name, protocol, bind and default")
        else { return nil }
        let before = reader.errors.count
        reportLater(listener, Schema.listenerLater)

        var name: String?
        if let value = reader.required("name", in: listener, expected: "the listener's name") {
            name = reader.name(value)
            if let name {
                if let other = names[name] {
                    reader.error("duplicate listener name \"\(name)\" (also \(other))", at: value)
                } else {
                    names[name] = item.path
                }
            }
        }
        let kind = protocolKind(in: listener)

        var bind: SocketAddressSpec?
        if let value = reader.required("bind", in: listener, expected: "the address to listen on, like 0.0.0.0:8080") {
            bind = reader.address(value)
            if let bind { checkBind(bind, at: value, owner: name.map { "listener \"\($0)\"" } ?? item.path) }
        }

        var idleTimeout: UInt64? = ListenerConfig.defaultTCPIdleTimeout
        if let value = listener["idle_timeout"] { idleTimeout = positiveDuration(value) }
        var connectTimeout: UInt64? = ListenerConfig.defaultConnectTimeout
        if let value = listener["connect_timeout"] { connectTimeout = positiveDuration(value) }

        checkProxyProtocol(listener)

        var action: ListenerAction?
        if let value = reader.required("default", in: listener, expected: "an action like { forward: GROUP }") {
            action = self.action(value, listenerProtocol: kind)
        }
        guard reader.errors.count == before, let name, let kind, let bind, let idleTimeout, let connectTimeout,
            let action
        else { return nil }
        return ListenerConfig(
            name: name, protocolKind: kind, bind: bind, idleTimeout: idleTimeout,
            connectTimeout: connectTimeout, defaultAction: action)
    }

    /// Refuses a bind address that another listener (or `control.metrics`) already uses, or
    /// that overlaps one through a wildcard (`0.0.0.0:80` and `127.0.0.1:80`).
    private mutating func checkBind(_ address: SocketAddressSpec, at value: YAMLValue, owner: String) {
        for other in binds {
            if other.address == address {
                reader.error("bind address \(address) is already used by \(other.owner) (\(other.path))", at: value)
                return
            }
            if other.address.family == address.family, other.address.port == address.port,
                isWildcard(other.address) || isWildcard(address)
            {
                reader.error(
                    "bind address \(address) overlaps \(other.address) of \(other.owner) (\(other.path))",
                    at: value)
                return
            }
        }
        binds.append(BindEntry(address: address, owner: owner, path: value.path))
    }

    private func isWildcard(_ address: SocketAddressSpec) -> Bool {
        address.host == "0.0.0.0" || address.host == "::"
    }

    /// `proxy_protocol: off` and `accept_proxy_protocol: false` are accepted; the rest is later.
    private mutating func checkProxyProtocol(_ listener: YAMLMapping) {
        if let value = listener["proxy_protocol"], let key = listener.keyNode("proxy_protocol") {
            let text = value.node.scalar?.string
            if text == "v1" || text == "v2" {
                reader.notSupportedYet(
                    key, key: "proxy_protocol", shown: text, reason: LaterFeature.proxyProtocol.reason,
                    supported: "off")
            } else if text != "off" {
                reader.error("expected off, v1 or v2, got \(reader.describe(value.node))", at: value)
            }
        }
        if let value = listener["accept_proxy_protocol"], let key = listener.keyNode("accept_proxy_protocol"),
            let accept = reader.bool(value), accept
        {
            reader.notSupportedYet(
                key, key: "accept_proxy_protocol", shown: "true",
                reason: LaterFeature.proxyProtocol.reason, supported: "false")
        }
    }

    /// `default:` — `{ forward: GROUP }` or `{ forward: [ { group: G, weight: W }, ... ] }`.
    private mutating func action(_ value: YAMLValue, listenerProtocol: ProtocolKind?) -> ListenerAction? {
        guard
            let action = reader.mapping(
                value, supported: Schema.actionKeys, later: Schema.actionLater.map(\.key),
                expected: "an action like { forward: GROUP }")
        else { return nil }
        reportLater(action, Schema.actionLater)
        guard let forward = action["forward"] else {
            if !Schema.actionLater.contains(where: { action[$0.key] != nil }) {
                _ = reader.required("forward", in: action, expected: "the group to forward to")
            }
            return nil
        }
        let expected = "a group name or a list of { group: NAME, weight: N }"
        switch forward.node {
        case .scalar:
            guard let group = groupIndex(forward, listenerProtocol: listenerProtocol) else { return nil }
            return .forward([WeightedGroup(group: group, weight: 1)])
        case .sequence:
            return weightedForward(forward, listenerProtocol: listenerProtocol)
        default:
            reader.error("expected \(expected), got \(reader.describe(forward.node))", at: forward)
            return nil
        }
    }

    private mutating func weightedForward(_ forward: YAMLValue, listenerProtocol: ProtocolKind?) -> ListenerAction? {
        guard let items = reader.sequence(forward, expected: "a list of { group: NAME, weight: N }") else { return nil }
        guard !items.isEmpty else {
            reader.error("expected at least one { group: NAME, weight: N }", at: forward)
            return nil
        }
        let before = reader.errors.count
        var entries: [WeightedGroup] = []
        var seen: [Int: String] = [:]
        for item in items {
            guard
                let entry = reader.mapping(
                    item, supported: Schema.weightedGroupKeys,
                    expected: "a mapping like { group: NAME, weight: N }")
            else { continue }
            var weight = 1
            if let value = entry["weight"] {
                weight = reader.int(value, in: Schema.weights, expected: "a weight from 0 to 999") ?? weight
            }
            guard let value = reader.required("group", in: entry, expected: "a target group name"),
                let group = groupIndex(value, listenerProtocol: listenerProtocol)
            else { continue }
            if let other = seen[group] {
                reader.error("group \"\(groupOrderName(group))\" is listed twice (also \(other))", at: value)
                continue
            }
            seen[group] = value.path
            entries.append(WeightedGroup(group: group, weight: weight))
        }
        guard reader.errors.count == before else { return nil }
        guard entries.contains(where: { $0.weight > 0 }) else {
            reader.error("at least one group needs a weight above 0", at: forward)
            return nil
        }
        return .forward(entries)
    }

    /// The index of the group named at `value`, checking that it exists and fits the listener.
    private mutating func groupIndex(_ value: YAMLValue, listenerProtocol: ProtocolKind?) -> Int? {
        guard let name = reader.string(value, expected: "a target group name") else { return nil }
        guard let entry = groups[name] else {
            let known =
                groupOrder.isEmpty
                ? "no target groups are defined"
                : "defined groups: \(groupOrder.joined(separator: ", "))"
            reader.error("unknown target group \"\(name)\"; \(known)", at: value)
            return nil
        }
        // Only judged for listener protocols accepted now: the others are already refused.
        if let listenerProtocol, Schema.supportedProtocols.contains(listenerProtocol),
            let groupProtocol = entry.protocolKind
        {
            let fitting = Schema.groupProtocols(fitting: listenerProtocol)
            if !fitting.contains(groupProtocol) {
                reader.error(
                    "target group \"\(name)\" has protocol \(groupProtocol.rawValue), which does not fit a "
                        + "\(listenerProtocol.rawValue) listener (it needs a "
                        + "\(orList(fitting.map(\.rawValue))) group)", at: value)
                return nil
            }
        }
        return entry.index
    }

    private func groupOrderName(_ index: Int) -> String {
        groups.first { $0.value.index == index }?.key ?? "#\(index)"
    }
}
