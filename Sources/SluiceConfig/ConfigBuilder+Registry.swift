/// `registry:` (SPEC §10).
extension ConfigBuilder {
    mutating func registryConfig(_ value: YAMLValue?) -> RegistryConfig?? {
        guard let value, reader.kind(value.node) != .null else { return .some(nil) }
        guard let registry = reader.mapping(value, supported: Schema.registryKeys, expected: "a mapping with etcd")
        else { return nil }
        guard let etcdValue = reader.required("etcd", in: registry, expected: "a mapping with endpoints"),
              let etcd = reader.mapping(etcdValue, supported: Schema.etcdKeys, expected: "a mapping with endpoints")
        else { return nil }
        let before = reader.errors.count
        var endpoints: [String] = []
        if let list = reader.required("endpoints", in: etcd, expected: "a list of etcd URLs"),
           let items = reader.sequence(list, expected: "a list of etcd URLs") {
            if items.isEmpty { reader.error("expected at least one etcd URL", at: list) }
            for item in items {
                guard let url = reader.string(item, expected: "an etcd URL") else { continue }
                if let problem = RegistryConfig.endpointProblem(url) {
                    reader.error("\(problem), got \(reader.quoted(url))", at: item)
                } else {
                    endpoints.append(url)
                }
            }
        }
        var config = RegistryConfig(endpoints: endpoints)
        if let prefix = etcd["prefix"], let text = reader.string(prefix, expected: "a key prefix") {
            if let problem = RegistryConfig.prefixProblem(text) {
                reader.error("\(problem), got \(reader.quoted(text))", at: prefix)
            } else {
                config.prefix = text
            }
        }
        if let dial = etcd["dial_timeout"], let nanos = positiveDuration(dial) {
            config.dialTimeout = nanos
        }
        if let ttl = etcd["lease_ttl"], let nanos = reader.duration(ttl) {
            let seconds = nanos / Nanoseconds.second
            let whole = nanos % Nanoseconds.second == 0
            if !whole || !RegistryConfig.leaseTTLRange.contains(Int(clamping: seconds)) {
                reader.error(
                    "expected whole seconds from \(RegistryConfig.leaseTTLRange.lowerBound)s to "
                        + "\(RegistryConfig.leaseTTLRange.upperBound)s, got \(reader.describe(ttl.node))", at: ttl)
            } else {
                config.leaseTTLSeconds = Int(clamping: seconds)
            }
        }
        if let tlsValue = etcd["tls"], let tls = reader.mapping(tlsValue, supported: Schema.etcdTLSKeys) {
            var t = RegistryTLSConfig()
            if let ca = tls["ca_file"] { t.caFile = readableFile(ca, expected: "a CA file") }
            if let cert = tls["cert"] { t.certificateFile = readableFile(cert, expected: "a certificate file") }
            if let key = tls["key"] { t.keyFile = readableFile(key, expected: "a key file") }
            if (t.certificateFile == nil) != (t.keyFile == nil), tls["cert"] != nil || tls["key"] != nil,
               reader.errors.count == before {
                reader.error("a client certificate needs both cert and key", at: tlsValue)
            }
            config.tls = t
        }
        return reader.errors.count == before ? .some(config) : nil
    }
}
