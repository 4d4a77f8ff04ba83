internal import Yams

/// `listeners[i].tls` of https and tls listeners, and `tls` and `protocol_version` of target
/// groups (SPEC §2, §3, §5).
extension ConfigBuilder {
    /// The listener's TLS settings with defaults filled in; `nil` after an error. `key` is the
    /// `tls` key, whose position becomes the config's `location`.
    mutating func listenerTLS(_ value: YAMLValue, key: YAMLValue, listenerProtocol kind: ProtocolKind)
        -> ListenerTLSConfig?
    {
        // Keys of the other TLS listener protocol are read as known, then refused with a reason.
        let otherProtocolKeys = kind == .https ? Schema.tlsListenerTLSKeys : Schema.httpsListenerTLSKeys
        guard
            let mapping = reader.mapping(
                value, supported: Schema.listenerTLSKeys.filter { !otherProtocolKeys.contains($0) },
                later: otherProtocolKeys,
                expected: "a tls mapping like { certificates: [ { cert: PATH, key: PATH } ] }")
        else { return nil }
        let before = reader.errors.count
        for name in otherProtocolKeys {
            guard let keyNode = mapping.keyNode(name) else { continue }
            let owner = name == "ktls" ? "tls" : "https"
            reader.error(
                "\"\(name)\" is used only by \(owner) listeners; this listener's protocol is \(kind.rawValue)",
                at: keyNode)
        }

        var certificates: [CertificatePair]?
        if let certificatesValue = reader.required(
            "certificates", in: mapping, expected: "a list of { cert: PATH, key: PATH }, the first the default")
        {
            certificates = certificatePairs(certificatesValue)
        }
        var config = ListenerTLSConfig(
            certificates: [], alpn: ListenerTLSConfig.defaultALPN(for: kind), location: location(of: key))
        if let versionValue = mapping["min_version"] {
            let expected = "\"1.2\" or \"1.3\""
            if let text = reader.string(versionValue, expected: expected) {
                if let version = TLSMinVersion(rawValue: text) {
                    config.minVersion = version
                } else {
                    reader.error("expected \(expected), got \(reader.quoted(text))", at: versionValue)
                }
            }
        }
        if let alpnValue = mapping["alpn"], let alpn = alpn(alpnValue) {
            config.alpn = alpn
        }
        if let clientAuthValue = mapping["client_auth"], kind == .https {
            config.clientAuth = clientAuth(clientAuthValue)
        }
        if let timeoutValue = mapping["handshake_timeout"], let nanos = positiveDuration(timeoutValue) {
            config.handshakeTimeout = nanos
        }
        if let ktlsValue = mapping["ktls"], kind == .tls, let ktls = reader.bool(ktlsValue) {
            config.ktls = ktls
        }
        guard reader.errors.count == before, let certificates else { return nil }
        config.certificates = certificates
        return config
    }

    /// `certificates:` — at least one `{ cert: PATH, key: PATH }`, both readable files.
    private mutating func certificatePairs(_ value: YAMLValue) -> [CertificatePair]? {
        guard let items = reader.sequence(value, expected: "a list of { cert: PATH, key: PATH }") else { return nil }
        guard !items.isEmpty else {
            reader.error("expected at least one certificate, as in [ { cert: PATH, key: PATH } ]", at: value)
            return nil
        }
        var result: [CertificatePair] = []
        var valid = true
        for item in items {
            guard
                let pair = reader.mapping(
                    item, supported: Schema.certificateKeys, expected: "a mapping like { cert: PATH, key: PATH }")
            else {
                valid = false
                continue
            }
            let before = reader.errors.count
            let cert = reader.required("cert", in: pair, expected: "the PEM certificate chain, leaf first")
                .flatMap { readableFile($0, expected: "a certificate file path") }
            let key = reader.required("key", in: pair, expected: "the PEM private key of the certificate")
                .flatMap { readableFile($0, expected: "a key file path") }
            guard reader.errors.count == before, let cert, let key else {
                valid = false
                continue
            }
            result.append(CertificatePair(cert: cert, key: key, location: location(of: item)))
        }
        return valid ? result : nil
    }

    /// `alpn:` — a list of `h2` and `http/1.1`, each at most once, in preference order.
    private mutating func alpn(_ value: YAMLValue) -> [String]? {
        let names = orList(ListenerTLSConfig.alpnProtocols)
        guard let items = reader.sequence(value, expected: "a list of \(names), such as [h2, http/1.1]") else {
            return nil
        }
        var result: [String] = []
        var seen: [String: String] = [:]
        var valid = true
        for item in items {
            guard let text = reader.string(item, expected: names) else {
                valid = false
                continue
            }
            guard ListenerTLSConfig.alpnProtocols.contains(text) else {
                reader.error("expected \(names), got \(reader.quoted(text))", at: item)
                valid = false
                continue
            }
            if let other = seen[text] {
                reader.error("duplicate ALPN protocol \(reader.quoted(text)) (also \(other))", at: item)
                valid = false
                continue
            }
            seen[text] = item.path
            result.append(text)
        }
        return valid ? result : nil
    }

    /// `client_auth: { mode: verify | passthrough, ca_file: PATH }`; `ca_file` is required
    /// for `verify`.
    private mutating func clientAuth(_ value: YAMLValue) -> ClientAuthConfig? {
        guard
            let mapping = reader.mapping(
                value, supported: Schema.clientAuthKeys, expected: "a mapping like { mode: verify, ca_file: PATH }")
        else { return nil }
        let before = reader.errors.count
        let mode = reader.required("mode", in: mapping, expected: "verify or passthrough").flatMap {
            choice($0, ClientAuthMode.self)
        }
        var caFile: String?
        if let caValue = mapping["ca_file"] {
            caFile = readableFile(caValue, expected: "a CA bundle file path")
        } else if mode == .verify {
            _ = reader.required(
                "ca_file", in: mapping, expected: "mode verify needs the CA bundle client certificates must chain to")
        }
        guard reader.errors.count == before, let mode else { return nil }
        return ClientAuthConfig(mode: mode, caFile: caFile)
    }

    // MARK: Target groups

    /// A group's `tls:` — https and tls groups only; the defaults when absent on one of them,
    /// `nil` for other groups and after an error.
    mutating func groupTLS(in group: YAMLMapping, protocolKind: ProtocolKind?) -> GroupTLSConfig? {
        guard let value = group["tls"] else {
            return protocolKind.map(Schema.isTLS) == true ? GroupTLSConfig() : nil
        }
        if let protocolKind, !Schema.isTLS(protocolKind), let key = group.keyNode("tls") {
            reader.error(
                "\"tls\" says how Sluice speaks TLS to the targets of https and tls groups; this group's protocol is "
                    + "\(protocolKind.rawValue)", at: key)
            return nil
        }
        guard
            let mapping = reader.mapping(
                value, supported: Schema.groupTLSKeys,
                expected: "a mapping like { verify: true, ca_file: PATH, server_name: NAME }")
        else { return nil }
        let before = reader.errors.count
        var config = GroupTLSConfig()
        if let verifyValue = mapping["verify"], let verify = reader.bool(verifyValue) {
            config.verify = verify
        }
        if let caValue = mapping["ca_file"] {
            if !config.verify, let key = mapping.keyNode("ca_file") {
                reader.error("\"ca_file\" is used only to verify targets; this group has verify: false", at: key)
            } else {
                config.caFile = readableFile(caValue, expected: "a CA bundle file path")
            }
        }
        if let nameValue = mapping["server_name"] {
            config.serverName = serverName(nameValue)
        }
        return reader.errors.count == before ? config : nil
    }

    /// `server_name:` — a DNS name (SNI carries no IP address).
    private mutating func serverName(_ value: YAMLValue) -> String? {
        let expected = "a DNS name such as api.internal"
        guard let text = reader.string(value, expected: expected) else { return nil }
        // A name whose last label is all digits is an IPv4 address, which SNI may not carry.
        let lastLabel = text.split(separator: ".").last ?? ""
        guard AddressParser.isHostName(text[...]), !lastLabel.allSatisfy(\.isNumber) else {
            reader.error("expected \(expected) (SNI carries no IP address), got \(reader.quoted(text))", at: value)
            return nil
        }
        return text
    }

    /// `protocol_version: http1 | http2 | grpc` — http and https groups only, default `http1`;
    /// `nil` after an error.
    mutating func protocolVersion(in group: YAMLMapping, protocolKind: ProtocolKind?) -> ProtocolVersion? {
        guard let value = group["protocol_version"] else { return .http1 }
        if let protocolKind, !Schema.isHTTP(protocolKind), let key = group.keyNode("protocol_version") {
            reader.error(
                "\"protocol_version\" is used only by http and https groups; this group's protocol is "
                    + "\(protocolKind.rawValue)", at: key)
            return nil
        }
        return choice(value, ProtocolVersion.self)
    }

    // MARK: Files

    /// A path naming a readable regular file, resolved against the config file's directory
    /// when relative; `nil` after an error ("cannot read PATH: REASON").
    mutating func readableFile(_ value: YAMLValue, expected: String) -> String? {
        guard let text = path(value, expected: expected) else { return nil }
        let resolved = ConfigFiles.resolve(text, in: configDirectory)
        if let problem = ConfigFiles.problemReading(resolved) {
            reader.error("cannot read \(resolved): \(problem)", at: value)
            return nil
        }
        return resolved
    }

    /// `FILE:LINE:COLUMN` of `value`, for settings whose errors are found after loading.
    func location(of value: YAMLValue) -> String {
        "\(reader.file):\(value.position.line):\(value.position.column)"
    }
}
