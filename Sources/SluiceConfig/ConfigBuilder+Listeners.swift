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
        // "Allowed keys" in messages lists the keys of the listener's protocol; the http and tls
        // keys on another listener are reported by `checkProtocolKeys`, not as unknown.
        let written = Self.writtenProtocol(item).flatMap(ProtocolKind.init(rawValue:))
        let allowed = Schema.listenerKeys(for: written)
        let otherProtocols = Schema.listenerKeys(for: nil).filter { !allowed.contains($0) }
        guard
            let listener = reader.mapping(
                item, supported: allowed, later: Schema.listenerLater.map(\.key) + otherProtocols,
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
        if let kind { checkProtocolKeys(listener, kind: kind) }

        var bind: SocketAddressSpec?
        if let value = reader.required("bind", in: listener, expected: "the address to listen on, like 0.0.0.0:8080") {
            bind = reader.address(value)
            if let bind { checkBind(bind, at: value, owner: name.map { "listener \"\($0)\"" } ?? item.path) }
        }

        let isHTTP = kind.map(Schema.isHTTP) ?? false
        var idleTimeout: UInt64? =
            isHTTP ? ListenerConfig.defaultHTTPIdleTimeout
            : kind == .udp ? UDPListenerSettings.defaultIdleTimeout : ListenerConfig.defaultTCPIdleTimeout
        let writtenIdleTimeout = listener["idle_timeout"].flatMap { positiveDuration($0) }
        if listener["idle_timeout"] != nil { idleTimeout = writtenIdleTimeout }
        var connectTimeout: UInt64? = ListenerConfig.defaultConnectTimeout
        if let value = listener["connect_timeout"] { connectTimeout = positiveDuration(value) }

        let proxyProtocol = kind.flatMap { proxyProtocolSetting(listener, kind: $0) }
        let acceptProxyProtocol = kind.map { acceptsProxyProtocol(listener, kind: $0) } ?? false
        var udp: UDPListenerSettings?
        if let kind, Schema.isUDP(kind) {
            // `idle_timeout` ends idle flows too; unwritten, flows keep NLB's 120 s (TCP's 350 s).
            udp = UDPListenerSettings(idleTimeout: writtenIdleTimeout ?? UDPListenerSettings.defaultIdleTimeout)
            if let value = listener["max_flows"] {
                let range = Schema.maxFlows
                udp?.maxFlows = reader.int(
                    value, in: range, expected: "a number of flows from \(range.lowerBound) to \(range.upperBound)")
                    ?? UDPListenerSettings.defaultMaxFlows
            }
        }

        // Every listener logs (SPEC §8); http listeners keep the value in their settings too.
        var accessLog = AccessLogDestination.off
        if let value = listener["access_log"], let destination = self.accessLog(value) { accessLog = destination }

        var http: HTTPListenerSettings?
        var rules: [RuleConfig]? = []
        if let kind, isHTTP {
            http = httpSettings(listener)
            http?.accessLog = accessLog
            if let value = listener["rules"] { rules = ruleConfigs(value, listenerProtocol: kind) }
        }
        var tls: ListenerTLSConfig?
        let isTLS = kind.map(Schema.isTLS) ?? false
        if let kind, isTLS,
            let value = reader.required(
                "tls", in: listener,
                expected: "\(kind == .https ? "an https" : "a tls") listener terminates TLS and needs its "
                    + "certificates, as in tls: { certificates: [ { cert: PATH, key: PATH } ] }"),
            let key = listener.keyNode("tls")
        {
            tls = listenerTLS(value, key: key, listenerProtocol: kind)
        }

        var action: ListenerAction?
        if let value = reader.required("default", in: listener, expected: "an action like { forward: GROUP }") {
            action = self.action(value, listenerProtocol: kind)
        }
        guard reader.errors.count == before, let name, let kind, let bind, let idleTimeout, let connectTimeout,
            let action, let rules, !isHTTP || http != nil, !isTLS || tls != nil
        else { return nil }
        return ListenerConfig(
            name: name, protocolKind: kind, bind: bind, idleTimeout: idleTimeout,
            connectTimeout: connectTimeout, defaultAction: action, rules: rules, http: http, tls: tls,
            proxyProtocol: proxyProtocol, acceptProxyProtocol: acceptProxyProtocol, udp: udp, accessLog: accessLog)
    }

    /// The `protocol:` text of a listener mapping, read before the mapping is checked.
    private static func writtenProtocol(_ item: YAMLValue) -> String? {
        guard case .mapping(let mapping) = item.node else { return nil }
        for (key, value) in mapping where key.scalar?.string == "protocol" {
            return value.scalar?.string
        }
        return nil
    }

    /// Refuses the keys of http listeners and of TLS listeners on other listeners, at the key.
    private mutating func checkProtocolKeys(_ listener: YAMLMapping, kind: ProtocolKind) {
        if !Schema.isHTTP(kind) {
            for key in Schema.httpListenerKeys {
                if let keyNode = listener.keyNode(key) {
                    reader.error(
                        "\"\(key)\" is a key of http and https listeners; this listener's protocol is "
                            + "\(kind.rawValue)",
                        at: keyNode)
                }
            }
        }
        if !Schema.isTLS(kind) {
            for key in Schema.tlsListenerKeys {
                if let keyNode = listener.keyNode(key) {
                    reader.error(
                        "\"\(key)\" is a key of https and tls listeners, which terminate TLS; this listener's "
                            + "protocol is \(kind.rawValue)", at: keyNode)
                }
            }
        }
        if !Schema.isUDP(kind) {
            for key in Schema.udpListenerKeys {
                if let keyNode = listener.keyNode(key) {
                    reader.error(
                        "\"\(key)\" is a key of udp and tcp_udp listeners; this listener's protocol is "
                            + "\(kind.rawValue)", at: keyNode)
                }
            }
        }
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

    /// `accept_proxy_protocol:` — tcp, tls, http and https listeners read PROXY headers; a udp
    /// or tcp_udp listener may only say `false`.
    private mutating func acceptsProxyProtocol(_ listener: YAMLMapping, kind: ProtocolKind) -> Bool {
        guard let value = listener["accept_proxy_protocol"], let accept = reader.bool(value) else { return false }
        if accept && !Schema.proxyAcceptingListeners.contains(kind) {
            reader.error(
                "accept_proxy_protocol reads a header at the start of a TCP connection: it is for tcp, tls, http "
                    + "and https listeners, not \(kind.rawValue) ones", at: value)
            return false
        }
        return accept
    }
}

extension ConfigBuilder {
    /// `proxy_protocol: off | v1 | v2` of a listener or group whose protocol is `kind`.
    /// Only TCP carries v1; UDP flows (udp, tcp_udp) need v2.
    mutating func proxyProtocolSetting(_ mapping: YAMLMapping, kind: ProtocolKind, owners: String = "listeners")
        -> ProxyProtocolSetting?
    {
        guard let value = mapping["proxy_protocol"] else { return nil }
        let text = value.node.scalar?.string
        // YAML 1.1 readers take a bare `off` for false: accept both spellings.
        if text == "off" || text == "false" { return nil }
        guard let text, let setting = ProxyProtocolSetting(rawValue: text) else {
            reader.error("expected off, v1 or v2, got \(reader.describe(value.node))", at: value)
            return nil
        }
        guard Schema.proxySendingListeners.contains(kind) else {
            reader.error(
                "proxy_protocol sends the client's address to targets of tcp, tls, udp and tcp_udp \(owners); "
                    + "\(kind.rawValue) ones pass it in X-Forwarded-For", at: value)
            return nil
        }
        if setting == .v1 && Schema.isUDP(kind) {
            reader.error("PROXY protocol v1 has no form for UDP; \(kind.rawValue) needs v2", at: value)
            return nil
        }
        return setting
    }
}
