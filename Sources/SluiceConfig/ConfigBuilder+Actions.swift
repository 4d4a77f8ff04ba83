internal import Yams

/// Listener actions (`default:` and a rule's `then:`): `forward`, `redirect` and `respond`.
extension ConfigBuilder {
    /// The action at `value`: a mapping with exactly one of `forward`, `redirect` (http only) or
    /// `respond` (http only). `listenerProtocol` is `nil` when the listener's protocol is missing
    /// or unknown; then only the action's own shape is judged.
    mutating func action(_ value: YAMLValue, listenerProtocol: ProtocolKind?) -> ListenerAction? {
        let isHTTP = listenerProtocol.map(Schema.isHTTP) ?? true
        guard
            let action = reader.mapping(
                value, supported: Schema.actionKeys,
                expected: isHTTP
                    ? "an action like { forward: GROUP }, { redirect: ... } or { respond: ... }"
                    : "an action like { forward: GROUP }")
        else { return nil }
        // In file order, so a second action is reported where it is written.
        let present = Schema.actionKeys.compactMap { key in action.keyNode(key).map { (key, $0) } }
            .sorted { $0.1.position < $1.1.position }
        if let listenerProtocol, !isHTTP {
            var valid = true
            for (key, keyNode) in present where key != "forward" {
                reader.error(
                    "\"\(key)\" is an action of http listeners; a \(listenerProtocol.rawValue) listener can only "
                        + "forward", at: keyNode)
                valid = false
            }
            guard valid else { return nil }
        }
        guard let (key, _) = present.first else {
            if isHTTP {
                reader.error(
                    "expected one of forward, redirect or respond, got an empty action", at: value)
            } else {
                _ = reader.required("forward", in: action, expected: "the group to forward to")
            }
            return nil
        }
        guard present.count == 1 else {
            for (_, keyNode) in present.dropFirst() {
                reader.error(
                    "an action has exactly one of forward, redirect or respond; this one also has \(key)",
                    at: keyNode)
            }
            return nil
        }
        guard let body = action[key] else { return nil }
        switch key {
        case "redirect": return redirect(body).map(ListenerAction.redirect)
        case "respond": return respond(body).map(ListenerAction.respond)
        default: return forward(body, listenerProtocol: listenerProtocol)
        }
    }

    // MARK: forward

    /// `forward: GROUP` or `forward: [ { group: G, weight: W }, ... ]`.
    private mutating func forward(_ forward: YAMLValue, listenerProtocol: ProtocolKind?) -> ListenerAction? {
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
        if let listenerProtocol, let groupProtocol = entry.protocolKind
        {
            let fitting = Schema.groupProtocols(fitting: listenerProtocol)
            if !fitting.contains(groupProtocol) {
                reader.error(
                    "target group \"\(name)\" has protocol \(groupProtocol.rawValue), which does not fit "
                        + "\(article(listenerProtocol.rawValue)) \(listenerProtocol.rawValue) listener (it needs "
                        + "\(article(fitting[0].rawValue)) \(orList(fitting.map(\.rawValue))) group)", at: value)
                return nil
            }
        }
        return entry.index
    }

    private func groupOrderName(_ index: Int) -> String {
        groups.first { $0.value.index == index }?.key ?? "#\(index)"
    }

    /// "a" or "an" before a protocol name as read aloud (`an http`, `a tcp`).
    private func article(_ word: String) -> String {
        word.hasPrefix("h") ? "an" : "a"  // "an http", "a udp"
    }

    // MARK: redirect

    /// `redirect: { status, protocol, host, port, path, query }` (SPEC §3).
    private mutating func redirect(_ value: YAMLValue) -> RedirectAction? {
        guard
            let mapping = reader.mapping(
                value, supported: Schema.redirectKeys,
                expected: "a redirect like { status: 301, protocol: https }")
        else { return nil }
        let before = reader.errors.count
        var status: Int?
        if let value = reader.required("status", in: mapping, expected: "301 or 302") {
            status = reader.int(value, in: 301...302, expected: "301 or 302")
        }
        var redirect = RedirectAction(status: status ?? 301)
        if let value = mapping["protocol"], let text = reader.string(value, expected: "http, https or #{protocol}") {
            switch text.lowercased() {
            case "#{protocol}": break
            case "http", "https": redirect.scheme = text.lowercased()
            default: reader.error("expected http, https or #{protocol}, got \(reader.quoted(text))", at: value)
            }
        }
        if let value = mapping["host"], let text = template(value, expected: "a host name or a template") {
            if text.isEmpty || text.contains(where: { $0 == "/" || $0 == "?" || $0 == " " }) {
                reader.error("expected a host name or a template like #{host}, got \(reader.quoted(text))", at: value)
            } else if text != "#{host}" {
                redirect.host = text
            }
        }
        if let value = mapping["port"] {
            let expected = "a port from 1 to 65535 or #{port}"
            if case .int = reader.kind(value.node) {
                if let port = reader.int(value, in: 1...65_535, expected: expected) { redirect.port = String(port) }
            } else if let text = reader.string(value, expected: expected) {
                if let port = Int(text), (1...65_535).contains(port), text.allSatisfy(\.isASCII) {
                    redirect.port = String(port)
                } else if text != "#{port}" {
                    reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
                }
            }
        }
        if let value = mapping["path"], let text = template(value, expected: "a path starting with /") {
            if !text.hasPrefix("/") || text.contains(where: { $0 == "?" || $0 == " " }) {
                reader.error(
                    "expected a path starting with / (like /new/#{path}), got \(reader.quoted(text))", at: value)
            } else if text != "/#{path}" {
                redirect.path = text
            }
        }
        if let value = mapping["query"], let text = template(value, expected: "a query string without ?") {
            if text.hasPrefix("?") || text.contains(" ") {
                reader.error("expected a query string without the leading ? and spaces, got \(reader.quoted(text))",
                    at: value)
            } else if text != "#{query}" {
                redirect.query = text
            }
        }
        guard reader.errors.count == before, status != nil else { return nil }
        guard redirect.scheme != nil || redirect.host != nil || redirect.port != nil || redirect.path != nil
            || redirect.query != nil
        else {
            reader.error(
                "this redirect changes nothing (every part is left out or keeps its own value), so it would "
                    + "loop; set at least one of protocol, host, port, path or query to something else",
                at: value)
            return nil
        }
        return redirect
    }

    /// A redirect part: text whose `#{...}` placeholders are all known (SPEC §3).
    private mutating func template(_ value: YAMLValue, expected: String) -> String? {
        guard let text = reader.string(value, expected: expected) else { return nil }
        var rest = Substring(text)
        while let open = rest.range(of: "#{") {
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                reader.error("unterminated placeholder in \(reader.quoted(text)): expected #{NAME}", at: value)
                return nil
            }
            let name = String(rest[open.upperBound..<close])
            guard Schema.redirectPlaceholders.contains(name) else {
                let known = Schema.redirectPlaceholders.map { "#{\($0)}" }.joined(separator: ", ")
                reader.error("unknown placeholder #{\(name)} in \(reader.quoted(text)); known: \(known)", at: value)
                return nil
            }
            rest = rest[rest.index(after: close)...]
        }
        guard !text.contains(where: { $0.isASCII && ($0.asciiValue! < 0x20 || $0.asciiValue! == 0x7F) }) else {
            reader.error("expected \(expected) without control characters, got \(reader.quoted(text))", at: value)
            return nil
        }
        return text
    }

    // MARK: respond

    /// `respond: { status, content_type, body }` (SPEC §3).
    private mutating func respond(_ value: YAMLValue) -> FixedResponse? {
        guard
            let mapping = reader.mapping(
                value, supported: Schema.respondKeys,
                expected: "a response like { status: 200, body: \"ok\" }")
        else { return nil }
        let before = reader.errors.count
        let expectedStatus = "a status from 200 to 299 or 400 to 599"
        var status: Int?
        if let value = reader.required("status", in: mapping, expected: expectedStatus),
            let code = reader.int(value, in: 200...599, expected: expectedStatus)
        {
            if (300...399).contains(code) {
                reader.error("expected \(expectedStatus), got \(code) (use redirect for 3xx)", at: value)
            } else {
                status = code
            }
        }
        var contentType = FixedResponse.defaultContentType
        if let value = mapping["content_type"], let text = reader.string(value, expected: "a media type") {
            if Self.isMediaType(text) {
                contentType = text
            } else {
                reader.error("expected a media type like text/plain or application/json, got \(reader.quoted(text))",
                    at: value)
            }
        }
        var body: [UInt8] = []
        if let value = mapping["body"], let text = reader.string(value, expected: "the body text") {
            body = Array(text.utf8)
            if body.count > FixedResponse.maxBodyBytes {
                reader.error(
                    "a respond body may have at most \(FixedResponse.maxBodyBytes) bytes, this one has \(body.count)",
                    at: value)
            }
        }
        guard reader.errors.count == before, let status else { return nil }
        return FixedResponse(status: status, contentType: contentType, body: body)
    }

    /// `type/subtype` of token characters, optionally followed by `; parameters` of visible
    /// ASCII and spaces (a header value that needs no escaping).
    static func isMediaType(_ text: String) -> Bool {
        let parts = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        let type = parts[0].split(separator: "/", omittingEmptySubsequences: false)
        guard type.count == 2, type.allSatisfy({ HTTPSyntax.isToken($0) }) else { return false }
        guard parts.count == 2 else { return true }
        return parts[1].utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 || (0x21...0x7E).contains($0) }
    }
}
