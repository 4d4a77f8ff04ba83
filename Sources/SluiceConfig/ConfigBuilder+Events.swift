#if canImport(Glibc)
    internal import Glibc
#endif

/// `events:` (SPEC §13).
extension ConfigBuilder {
    mutating func eventsConfig(_ value: YAMLValue?) -> EventsConfig?? {
        guard let value, reader.kind(value.node) != .null else { return .some(nil) }
        guard let events = reader.mapping(value, supported: Schema.eventsKeys, expected: "a mapping with rules")
        else { return nil }
        let before = reader.errors.count
        var config = EventsConfig()
        if let retry = events["retry"] { config.retry = eventRetry(retry) ?? config.retry }
        if let list = events["rules"], let items = reader.sequence(list, expected: "a list of event rules", nullIsEmpty: true) {
            var seen: [String: String] = [:]
            for item in items {
                guard let rule = eventRule(item) else { continue }
                if let first = seen[rule.name] {
                    reader.error("rule name \(reader.quoted(rule.name)) is already used by \(first)", at: item)
                    continue
                }
                seen[rule.name] = item.path
                config.rules.append(rule)
            }
        }
        return reader.errors.count == before ? .some(config) : nil
    }

    private mutating func eventRetry(_ value: YAMLValue) -> EventRetryConfig? {
        guard let retry = reader.mapping(value, supported: Schema.eventsRetryKeys) else { return nil }
        var config = EventRetryConfig()
        let before = reader.errors.count
        if let attempts = retry["attempts"] {
            let range = EventRetryConfig.attemptsRange
            config.attempts = reader.int(attempts, in: range, expected: "a number of attempts from "
                + "\(range.lowerBound) to \(range.upperBound)") ?? config.attempts
        }
        if let backoff = retry["backoff"], let nanos = reader.duration(backoff) {
            if EventRetryConfig.backoffRange.contains(nanos) {
                config.backoff = nanos
            } else {
                reader.error("expected a back-off from 10ms to 1h, got \(reader.describe(backoff.node))", at: backoff)
            }
        }
        if let maxBackoff = retry["max_backoff"], let nanos = reader.duration(maxBackoff) {
            if nanos < config.backoff || nanos > EventRetryConfig.maxBackoffLimit {
                reader.error("expected a maximum back-off from backoff to 24h, got \(reader.describe(maxBackoff.node))",
                             at: maxBackoff)
            } else {
                config.maxBackoff = nanos
            }
        } else if retry["max_backoff"] == nil && config.maxBackoff < config.backoff {
            config.maxBackoff = config.backoff
        }
        return reader.errors.count == before ? config : nil
    }

    private mutating func eventRule(_ item: YAMLValue) -> EventRuleConfig? {
        guard let rule = reader.mapping(item, supported: Schema.eventRuleKeys, expected: "a rule with name, match and deliver")
        else { return nil }
        let before = reader.errors.count
        var name: String?
        if let value = reader.required("name", in: rule, expected: "the rule's name"),
           let text = reader.string(value, expected: "a rule name") {
            if let problem = EventRuleConfig.nameProblem(text) {
                reader.error("\(problem), got \(reader.quoted(text))", at: value)
            } else {
                name = text
            }
        }
        var match: [EventField: [String]] = [:]
        if let value = rule["match"], reader.kind(value.node) != .null,
           let entries = reader.entries(value, expected: "a mapping of event fields to lists of values") {
            for entry in entries {
                guard let field = EventField(rawValue: entry.key) else {
                    reader.error("unknown event field \(reader.quoted(entry.key)); fields: "
                                 + EventField.allCases.map(\.rawValue).joined(separator: ", "), at: entry.keyValue)
                    continue
                }
                guard let values = matchValues(entry.value, field: field) else { continue }
                match[field] = values
            }
        }
        var deliver: EventDelivery?
        if let value = reader.required("deliver", in: rule, expected: "webhook or exec") {
            deliver = eventDelivery(value)
        }
        guard reader.errors.count == before, let name, let deliver else { return nil }
        return EventRuleConfig(name: name, match: match, deliver: deliver)
    }

    /// A list of strings (a single scalar reads as a list of one).
    private mutating func matchValues(_ value: YAMLValue, field: EventField) -> [String]? {
        let items: [YAMLValue]
        if case .sequence = value.node {
            guard let list = reader.sequence(value, expected: "a list of values") else { return nil }
            items = list
        } else {
            items = [value]
        }
        var values: [String] = []
        for item in items {
            guard let text = reader.string(item, expected: "a value of \(field.rawValue)") else { continue }
            if field == .type && !EventKinds.all.contains(text) {
                reader.error("unknown event type \(reader.quoted(text)); types: \(EventKinds.all.joined(separator: ", "))",
                             at: item)
                continue
            }
            values.append(text)
        }
        if items.isEmpty { reader.error("expected at least one value", at: value) }
        return values
    }

    private mutating func eventDelivery(_ value: YAMLValue) -> EventDelivery? {
        guard let deliver = reader.mapping(value, supported: Schema.eventDeliverKeys, expected: "webhook or exec")
        else { return nil }
        switch (deliver["webhook"], deliver["exec"]) {
        case (nil, nil):
            reader.error("expected exactly one of webhook or exec", at: value)
            return nil
        case (.some, .some):
            reader.error("expected exactly one of webhook or exec, not both", at: value)
            return nil
        case (nil, let exec?):
            for key in ["secret_file", "ca_file"] {
                if let value = deliver[key] {
                    reader.error("\(key) goes with webhook only", at: value)
                    return nil
                }
            }
            guard let path = path(exec, expected: "an absolute program path") else { return nil }
            guard path.hasPrefix("/") else {
                reader.error("expected an absolute program path, got \(reader.quoted(path))", at: exec)
                return nil
            }
            return .exec(path)
        case (let webhook?, nil):
            guard let url = reader.string(webhook, expected: "a webhook URL") else { return nil }
            let parsed: WebhookTarget
            switch WebhookTarget.parse(url) {
            case .success(let t): parsed = t
            case .failure(let problem):
                reader.error("\(problem), got \(reader.quoted(url))", at: webhook)
                return nil
            }
            var target = parsed
            if let ca = deliver["ca_file"] {
                guard target.tls else {
                    reader.error("ca_file goes with an https:// webhook only", at: ca)
                    return nil
                }
                guard let file = readableFile(ca, expected: "a CA file") else { return nil }
                target.caFile = file
            }
            var secret: [UInt8]?
            if let file = deliver["secret_file"] {
                guard let bytes = secretFile(file) else { return nil }
                secret = bytes
            }
            return .webhook(target, secret: secret)
        }
    }

    /// The secret file's content without one final newline; an error naming the file when it
    /// cannot be read or is empty.
    private mutating func secretFile(_ value: YAMLValue) -> [UInt8]? {
        guard let resolved = readableFile(value, expected: "a secret file") else { return nil }
        var fd: Int32
        repeat { fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            reader.error("cannot read \(resolved): \(String(cString: strerror(errno)))", at: value)
            return nil
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= Schema.maxSecretBytes {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                reader.error("cannot read \(resolved): \(String(cString: strerror(errno)))", at: value)
                return nil
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        if bytes.count > Schema.maxSecretBytes {
            reader.error("the secret file \(resolved) is larger than \(Schema.maxSecretBytes) bytes", at: value)
            return nil
        }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        guard !bytes.isEmpty else {
            reader.error("the secret file \(resolved) is empty", at: value)
            return nil
        }
        return bytes
    }
}
