internal import Yams

/// Where a target group is in the file, for `forward` lookups from listeners.
struct GroupEntry {
    var index: Int
    var path: String
    /// `nil` when the group's protocol is missing or unknown.
    var protocolKind: ProtocolKind?
}

/// Where a listener binds, for the "two listeners may not share a bind address" check.
struct BindEntry {
    var address: SocketAddressSpec
    var owner: String
    var path: String
}

/// One load: walks the document section by section with a `YAMLReader`, which collects the
/// errors. Each section returns `nil` if it had any error; the config exists only if none did.
struct ConfigBuilder {
    var reader: YAMLReader
    var groups: [String: GroupEntry] = [:]
    var groupOrder: [String] = []
    var binds: [BindEntry] = []
    /// Where relative file paths in the config point (`ConfigFiles.directory(of:)`).
    var configDirectory = "."

    mutating func config(_ root: YAMLValue) -> Config? {
        guard
            let top = reader.mapping(
                root, supported: Schema.topLevelKeys, later: Schema.topLevelLater.map(\.key),
                expected: "a mapping with node, control, listeners and target_groups")
        else { return nil }
        reportLater(top, Schema.topLevelLater)
        let node = nodeConfig(top["node"])
        let control = controlConfig(top["control"])
        let registry = registryConfig(top["registry"])
        let events = eventsConfig(top["events"])
        if let metrics = control?.metrics, let value = top["control"] {
            binds.append(BindEntry(address: metrics, owner: "control.metrics", path: value.path(key: "metrics")))
        }
        let targetGroups = targetGroupConfigs(top["target_groups"], nodeZone: node?.zone ?? NodeConfig.defaultZone)
        let listeners = reader.required("listeners", in: top, expected: "a list of listeners").flatMap {
            listenerConfigs($0)
        }
        guard let node, let control, let registry, let targetGroups, let listeners, let events else { return nil }
        return Config(node: node, control: control, registry: registry, listeners: listeners, targetGroups: targetGroups,
                      events: events)
    }

    /// Reports every later-release key present in `mapping`, at the key.
    mutating func reportLater(_ mapping: YAMLMapping, _ table: KeyValuePairs<String, LaterFeature>) {
        for entry in table {
            if let keyNode = mapping.keyNode(entry.key) {
                reader.notSupportedYet(keyNode, key: entry.key, reason: entry.value.reason)
            }
        }
    }

    /// `node:`; absent or empty means every default.
    mutating func nodeConfig(_ value: YAMLValue?) -> NodeConfig? {
        var config = NodeConfig()
        guard let value, reader.kind(value.node) != .null else { return config }
        guard let node = reader.mapping(value, supported: Schema.nodeKeys) else { return nil }
        let before = reader.errors.count
        if let name = node["name"] {
            config.name = reader.name(name) ?? config.name
        }
        if let zone = node["zone"] {
            config.zone = reader.name(zone) ?? config.zone
        }
        if let workers = node["workers"] {
            if workers.node.scalar?.string == "auto" {
                config.workers = nil
            } else {
                let expected = "auto or a number from \(Schema.workers.lowerBound) to \(Schema.workers.upperBound)"
                config.workers = reader.int(workers, in: Schema.workers, expected: expected)
            }
        }
        if let maxConnections = node["max_connections"],
            let count = reader.int(maxConnections, in: 1...Int.max, expected: "a number of connections, 1 or more")
        {
            config.maxConnections = count
        }
        if let grace = node["shutdown_grace"], let nanos = reader.duration(grace) {
            config.shutdownGrace = nanos
        }
        return reader.errors.count == before ? config : nil
    }

    /// `control:`; absent or empty means every default.
    mutating func controlConfig(_ value: YAMLValue?) -> ControlConfig? {
        var config = ControlConfig()
        guard let value, reader.kind(value.node) != .null else { return config }
        guard let control = reader.mapping(value, supported: Schema.controlKeys) else { return nil }
        let before = reader.errors.count
        if let socket = control["socket"], let path = path(socket, expected: "a Unix socket path") {
            if path.utf8.count > Schema.maxSocketPathBytes {
                reader.error(
                    "a Unix socket path may have at most \(Schema.maxSocketPathBytes) bytes, "
                        + "this one has \(path.utf8.count)", at: socket)
            }
            config.socket = path
        }
        if let metrics = control["metrics"] {
            config.metrics = reader.address(metrics)
        }
        if let state = control["state"], let path = path(state, expected: "a file path") {
            config.state = path
        }
        return reader.errors.count == before ? config : nil
    }

    /// A non-empty path.
    mutating func path(_ value: YAMLValue, expected: String) -> String? {
        guard let text = reader.string(value, expected: expected) else { return nil }
        guard !text.isEmpty, !text.contains("\0") else {
            reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
            return nil
        }
        return text
    }

    /// `protocol:` of a listener or group: the kind if known, `nil` after an error for a missing
    /// or unknown protocol.
    mutating func protocolKind(in mapping: YAMLMapping) -> ProtocolKind? {
        guard let value = reader.required("protocol", in: mapping, expected: "the protocol, such as tcp"),
            let text = reader.string(value, expected: "a protocol")
        else { return nil }
        let supported = Schema.supportedProtocols.map(\.rawValue).joined(separator: ", ")
        guard let kind = ProtocolKind(rawValue: text) else {
            reader.error("expected \(supported), got \(reader.quoted(text))", at: value)
            return nil
        }
        return kind
    }

    /// A duration that must be more than zero.
    mutating func positiveDuration(_ value: YAMLValue) -> UInt64? {
        guard let nanos = reader.duration(value) else { return nil }
        guard nanos > 0 else {
            reader.error("expected a duration more than 0s, got \(reader.describe(value.node))", at: value)
            return nil
        }
        return nanos
    }

    /// `a, b or c`.
    func orList(_ items: [String]) -> String {
        guard let last = items.last, items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " or " + last
    }
}
