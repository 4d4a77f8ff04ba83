import Foundation
import SluiceConfig
import Testing

/// The certificate, key and CA files the TLS tests name, as empty files in a temporary directory.
private let certificateFiles = ["a.pem", "a.key", "b.pem", "b.key", "ca.pem"]

/// A document whose only listener (`secure`, protocol `protocolName`) forwards to `forward` and
/// has `tls:` at line 6, column 5 with `tls` (lines indented by 6) from line 7, column 7 on, then
/// `extra` (indented by 4); without `tls` (nil) `extra` starts at line 6. `$DIR` in `tls` and
/// `extra` stands for `directory`. Groups: `app` (http), `pg` (tcp), `sec` (https), `pgs` (tls).
private func tlsListenerDocument(
    _ protocolName: String, tls: String?, extra: String = "", forward: String = "app", directory: String
) -> String {
    var lines = [
        "listeners:",
        "  - name: secure",
        "    protocol: \(protocolName)",
        "    bind: 127.0.0.1:8443",
        "    default: { forward: \(forward) }",
    ]
    if let tls {
        lines.append("    tls:")
        lines += tls.split(separator: "\n").map { "      " + $0 }
    }
    lines += extra.split(separator: "\n").map { "    " + $0 }
    lines += [
        "target_groups:",
        "  - { name: app, protocol: http }",
        "  - { name: pg, protocol: tcp }",
        "  - { name: sec, protocol: https }",
        "  - { name: pgs, protocol: tls }",
    ]
    return lines.joined(separator: "\n").replacingOccurrences(of: "$DIR", with: directory)
}

/// The one certificate most documents use (line 7 when it comes first).
private let oneCertificate = "certificates: [ { cert: $DIR/a.pem, key: $DIR/a.key } ]"

/// `tls:` of listeners (SPEC §2, §3 Mutual TLS, §5).
@Suite struct ListenerTLSConfigTests {
    @Test func httpsListenerWithTwoCertificatesAndClientAuth() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = tlsListenerDocument(
            "https",
            tls: """
                certificates:
                  - { cert: $DIR/a.pem, key: $DIR/a.key }
                  - cert: $DIR/b.pem
                    key: $DIR/b.key
                min_version: 1.3
                alpn: [http/1.1]
                client_auth: { mode: verify, ca_file: $DIR/ca.pem }
                handshake_timeout: 3s
                """,
            extra: """
                xff: preserve
                rules:
                  - { priority: 1, when: { path: ["/v2/*"] }, then: { forward: sec } }
                """,
            directory: directory)
        let config = try #require(load(yaml))
        let listener = config.listeners[0]
        #expect(listener.protocolKind == .https)
        #expect(
            listener.tls
                == ListenerTLSConfig(
                    certificates: [
                        CertificatePair(
                            cert: "\(directory)/a.pem", key: "\(directory)/a.key", location: "test.yaml:8:11"),
                        CertificatePair(
                            cert: "\(directory)/b.pem", key: "\(directory)/b.key", location: "test.yaml:9:11"),
                    ],
                    minVersion: .v1_3, alpn: ["http/1.1"],
                    clientAuth: ClientAuthConfig(mode: .verify, caFile: "\(directory)/ca.pem"),
                    handshakeTimeout: 3 * Nanoseconds.second, ktls: false, location: "test.yaml:6:5"))
        // Every http listener key works on https listeners.
        #expect(listener.http?.xff == .preserve)
        #expect(listener.rules.map(\.action) == [.forward([WeightedGroup(group: 2, weight: 1)])])
    }

    @Test func clientAuthPassthroughNeedsNoCAFile() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = tlsListenerDocument(
            "https", tls: oneCertificate + "\nclient_auth: { mode: passthrough }", directory: directory)
        let config = try #require(load(yaml))
        #expect(config.listeners[0].tls?.clientAuth == ClientAuthConfig(mode: .passthrough, caFile: nil))
    }

    @Test func tlsListenerWithKTLS() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = tlsListenerDocument(
            "tls", tls: oneCertificate + "\nktls: true\nalpn: [h2]", forward: "pgs", directory: directory)
        let config = try #require(load(yaml))
        let listener = config.listeners[0]
        #expect(listener.protocolKind == .tls)
        #expect(listener.http == nil)
        #expect(listener.idleTimeout == ListenerConfig.defaultTCPIdleTimeout)
        #expect(
            listener.tls
                == ListenerTLSConfig(
                    certificates: [
                        CertificatePair(
                            cert: "\(directory)/a.pem", key: "\(directory)/a.key", location: "test.yaml:7:23")
                    ],
                    alpn: ["h2"], ktls: true, location: "test.yaml:6:5"))
    }

    @Test func defaults() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let https = try #require(load(tlsListenerDocument("https", tls: oneCertificate, directory: directory)))
        let tls = try #require(https.listeners[0].tls)
        #expect(tls.minVersion == .v1_2)
        #expect(tls.alpn == ["h2", "http/1.1"])
        #expect(tls.clientAuth == nil)
        #expect(tls.handshakeTimeout == 10 * Nanoseconds.second)
        #expect(tls.ktls == false)
        #expect(https.listeners[0].http == HTTPListenerSettings())

        let tcpTLS = try #require(
            load(tlsListenerDocument("tls", tls: oneCertificate, forward: "pg", directory: directory)))
        #expect(tcpTLS.listeners[0].tls?.alpn == [])
        #expect(tcpTLS.listeners[0].tls?.minVersion == .v1_2)
        #expect(tcpTLS.listeners[0].tls?.handshakeTimeout == 10 * Nanoseconds.second)
        #expect(tcpTLS.listeners[0].tls?.ktls == false)
        // Plain listeners carry no TLS settings; TLS groups always do.
        #expect(try #require(load(minimalYAML)).listeners[0].tls == nil)
        let groups = Dictionary(uniqueKeysWithValues: https.targetGroups.map { ($0.name, $0) })
        #expect(groups["app"]?.tls == nil)
        #expect(groups["pg"]?.tls == nil)
        #expect(groups["sec"]?.tls == GroupTLSConfig(verify: true, caFile: nil, serverName: nil))
        #expect(groups["pgs"]?.tls == GroupTLSConfig(verify: true, caFile: nil, serverName: nil))
        #expect(groups["sec"]?.protocolVersion == .http1)
        #expect(groups["sec"]?.healthCheck == HealthCheckConfig(protocolKind: .https))
        #expect(groups["pgs"]?.healthCheck == HealthCheckConfig(protocolKind: .tcp))
        #expect(groups["pgs"]?.algorithm == .flowHash)
    }

    /// Each bad document gives exactly one error: `LINE:COLUMN PATH` and its message.
    @Test(arguments: [
        // (protocol, tls, extra, forward, position, message)
        ("https", nil, "", "app", "2:5 listeners[0].tls",
         "missing required key \"tls\" (an https listener terminates TLS and needs its certificates, as in "
            + "tls: { certificates: [ { cert: PATH, key: PATH } ] })"),
        ("tls", nil, "", "pg", "2:5 listeners[0].tls",
         "missing required key \"tls\" (a tls listener terminates TLS and needs its certificates, as in "
            + "tls: { certificates: [ { cert: PATH, key: PATH } ] })"),
        ("http", oneCertificate, "", "app", "6:5 listeners[0].tls",
         "\"tls\" is a key of https and tls listeners, which terminate TLS; this listener's protocol is http"),
        ("tcp", oneCertificate, "", "pg", "6:5 listeners[0].tls",
         "\"tls\" is a key of https and tls listeners, which terminate TLS; this listener's protocol is tcp"),
        ("https", "certificates: [ { cert: /nonexistent-sluice-test/api.pem, key: $DIR/a.key } ]", "", "app",
         "7:31 listeners[0].tls.certificates[0].cert",
         "cannot read /nonexistent-sluice-test/api.pem: No such file or directory"),
        ("https", "certificates: [ { key: $DIR, cert: $DIR/a.pem } ]", "", "app",
         "7:30 listeners[0].tls.certificates[0].key", "cannot read $DIR: Is a directory"),
        ("https", "certificates: [ { cert: $DIR/a.pem } ]", "", "app",
         "7:23 listeners[0].tls.certificates[0].key",
         "missing required key \"key\" (the PEM private key of the certificate)"),
        ("https", "certificates: []", "", "app", "7:21 listeners[0].tls.certificates",
         "expected at least one certificate, as in [ { cert: PATH, key: PATH } ]"),
        ("https", oneCertificate + "\nclient_auth: { mode: verify }", "", "app",
         "8:20 listeners[0].tls.client_auth.ca_file",
         "missing required key \"ca_file\" (mode verify needs the CA bundle client certificates must chain to)"),
        ("https", oneCertificate + "\nclient_auth: { mode: optional, ca_file: $DIR/ca.pem }", "", "app",
         "8:28 listeners[0].tls.client_auth.mode", "expected verify or passthrough, got \"optional\""),
        ("https", oneCertificate + "\nalpn: [h2, h3]", "", "app", "8:18 listeners[0].tls.alpn[1]",
         "expected h2 or http/1.1, got \"h3\""),
        ("https", oneCertificate + "\nalpn: [h2, http/1.1, h2]", "", "app", "8:28 listeners[0].tls.alpn[2]",
         "duplicate ALPN protocol \"h2\" (also listeners[0].tls.alpn[0])"),
        ("https", oneCertificate + "\nmin_version: \"1.1\"", "", "app", "8:20 listeners[0].tls.min_version",
         "expected \"1.2\" or \"1.3\", got \"1.1\""),
        ("https", oneCertificate + "\nhandshake_timeout: 0s", "", "app", "8:26 listeners[0].tls.handshake_timeout",
         "expected a duration more than 0s, got \"0s\""),
        ("https", oneCertificate + "\nktls: true", "", "app", "8:7 listeners[0].tls.ktls",
         "\"ktls\" is used only by tls listeners; this listener's protocol is https"),
        ("tls", oneCertificate + "\nclient_auth: { mode: passthrough }", "", "pg", "8:7 listeners[0].tls.client_auth",
         "\"client_auth\" is used only by https listeners; this listener's protocol is tls"),
        ("https", oneCertificate + "\nmin_versoin: \"1.3\"", "", "app", "8:7 listeners[0].tls.min_versoin",
         "unknown key \"min_versoin\" (did you mean \"min_version\"?); allowed keys: certificates, min_version, "
            + "alpn, client_auth, handshake_timeout"),
        ("tls", oneCertificate, "", "app", "5:25 listeners[0].default.forward",
         "target group \"app\" has protocol http, which does not fit a tls listener (it needs a tcp, tls or tcp_udp group)"),
        ("https", oneCertificate, "", "pgs", "5:25 listeners[0].default.forward",
         "target group \"pgs\" has protocol tls, which does not fit an https listener (it needs an http or https "
            + "group)"),
        ("tls", oneCertificate, "rules: []", "pg", "8:5 listeners[0].rules",
         "\"rules\" is a key of http and https listeners; this listener's protocol is tls"),
    ] as [(String, String?, String, String, String, String)])
    func refusals(
        protocolName: String, tls: String?, extra: String, forward: String, position: String, message: String
    ) throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = tlsListenerDocument(protocolName, tls: tls, extra: extra, forward: forward, directory: directory)
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [position])
        #expect(errors.map(\.message) == [message.replacingOccurrences(of: "$DIR", with: directory)])
    }

    @Test func aTypoInTLSIsAnUnknownKeyNamingTheValidOnes() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = tlsListenerDocument(
            "tls", tls: "certificate: [ { cert: $DIR/a.pem, key: $DIR/a.key } ]", forward: "pg", directory: directory)
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 7, column: 7, path: "listeners[0].tls.certificate",
                    message: "unknown key \"certificate\" (did you mean \"certificates\"?); allowed keys: "
                        + "certificates, min_version, alpn, handshake_timeout, ktls"),
                ConfigError(
                    file: testFile, line: 7, column: 7, path: "listeners[0].tls.certificates",
                    message: "missing required key \"certificates\" (a list of { cert: PATH, key: PATH }, the first "
                        + "the default)"),
            ])
    }

    @Test func everyProblemOfOneListenerIsReported() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = tlsListenerDocument(
            "https",
            tls: """
                certificates: [ { cert: /nonexistent-sluice-test/a.pem, key: /nonexistent-sluice-test/a.key } ]
                alpn: [h2, h2]
                """, directory: directory)
        #expect(
            loadErrors(yaml).map(\.path) == [
                "listeners[0].tls.certificates[0].cert", "listeners[0].tls.certificates[0].key",
                "listeners[0].tls.alpn[1]",
            ])
    }

    /// Relative paths resolve against the directory of the config file, not the current one.
    @Test func relativePathsResolveAgainstTheConfigDirectory() throws {
        let directory = try temporaryDirectory(files: ["conf/certs/a.pem", "conf/certs/a.key", "conf/ca.pem"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/conf/sluice.yaml"
        let yaml = tlsListenerDocument(
            "https",
            tls: """
                certificates: [ { cert: certs/a.pem, key: ./certs/a.key } ]
                client_auth: { mode: verify, ca_file: ca.pem }
                """, directory: directory)
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: path)
        let tls = try #require(config.listeners[0].tls)
        #expect(
            tls.certificates == [
                CertificatePair(
                    cert: "\(directory)/conf/certs/a.pem", key: "\(directory)/conf/certs/a.key",
                    location: "\(path):7:23")
            ])
        #expect(tls.clientAuth?.caFile == "\(directory)/conf/ca.pem")
        #expect(tls.location == "\(path):6:5")

        // A relative path that is not there is reported as resolved.
        try yaml.replacingOccurrences(of: "ca.pem", with: "missing.pem").write(
            toFile: path, atomically: true, encoding: .utf8)
        #expect(
            loadErrors(path: path).map(\.message) == [
                "cannot read \(directory)/conf/missing.pem: No such file or directory"
            ])
    }

    /// The fuzz seed with every TLS key loads, so the fuzzer starts from a valid config.
    @Test func theTLSFuzzSeedLoads() throws {
        let path = #filePath.replacingOccurrences(
            of: "Tests/SluiceConfigTests/TLSConfigTests.swift", with: "Fuzz/ConfigLoaderFuzz/seeds/tls.yaml")
        let config = try ConfigLoader.load(path: path)
        #expect(config.listeners.map(\.tls?.certificates.count) == [2, 1])
        #expect(config.targetGroups.map(\.protocolVersion) == [.http2, .grpc, .http1])
        #expect(config.targetGroups[1].healthCheck?.grpc == true)
    }

    /// SPEC §2's example https listener, with its files present.
    @Test func theSpecExampleHTTPSListenerLoads() throws {
        let directory = try temporaryDirectory(files: ["certs/api.pem", "certs/api.key", "clients-ca.pem"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = """
            listeners:
              - name: secure
                protocol: https
                bind: 0.0.0.0:8443
                tls:
                  certificates:           # chosen by SNI; the first is the default
                    - { cert: /etc/sluice/certs/api.pem, key: /etc/sluice/certs/api.key }
                  min_version: "1.2"        # TLS 1.2/1.3 sessions resume with tickets shared by all workers
                  alpn: [h2, http/1.1]
                  client_auth:            # optional mutual TLS, as ALB's
                    mode: verify          # verify | passthrough
                    ca_file: /etc/sluice/clients-ca.pem
                default: { forward: app }
            target_groups:
              - name: app
                protocol: http            # http | https | tcp | tls | udp
                targets:
                  - { address: 127.0.0.1:9001, zone: zone-a, weight: 1 }
            """.replacingOccurrences(of: "/etc/sluice", with: directory)
        let config = try #require(load(yaml))
        #expect(
            config.listeners[0].tls
                == ListenerTLSConfig(
                    certificates: [
                        CertificatePair(
                            cert: "\(directory)/certs/api.pem", key: "\(directory)/certs/api.key",
                            location: "test.yaml:7:11")
                    ],
                    minVersion: .v1_2, alpn: ["h2", "http/1.1"],
                    clientAuth: ClientAuthConfig(mode: .verify, caFile: "\(directory)/clients-ca.pem"),
                    location: "test.yaml:5:5"))
    }
}

/// Forwarding between plain and TLS protocols (SPEC §2: the group's protocol fits the listener).
@Suite struct TLSForwardFitTests {
    @Test(arguments: [
        ("https", "app"), ("https", "sec"), ("http", "sec"), ("tls", "pg"), ("tls", "pgs"), ("tcp", "pgs"),
    ])
    func fittingForwardsLoad(protocolName: String, group: String) throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let terminates = protocolName == "https" || protocolName == "tls"
        let yaml = tlsListenerDocument(
            protocolName, tls: terminates ? oneCertificate : nil, forward: group, directory: directory)
        let config = try #require(load(yaml))
        let index = try #require(config.groupIndex(named: group))
        #expect(config.listeners[0].defaultAction == .forward([WeightedGroup(group: index, weight: 1)]))
    }
}

/// `tls` and `protocol_version` of target groups, and their health checks (SPEC §3, §4).
@Suite struct GroupTLSConfigTests {
    /// `httpGroupDocument` with its group's protocol changed to https.
    private func httpsGroupDocument(_ extra: String) -> String {
        httpGroupDocument(extra).replacingOccurrences(of: "    protocol: http\n", with: "    protocol: https\n")
    }

    @Test func groupTLSKeys() throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try #require(
            load(httpsGroupDocument("tls: { ca_file: \(directory)/ca.pem, server_name: api.internal }")))
        let group = config.targetGroups[0]
        #expect(group.protocolKind == .https)
        #expect(group.tls == GroupTLSConfig(verify: true, caFile: "\(directory)/ca.pem", serverName: "api.internal"))
        let unverified = try #require(load(httpsGroupDocument("tls: { verify: false }")))
        #expect(unverified.targetGroups[0].tls == GroupTLSConfig(verify: false))
    }

    @Test func protocolVersions() throws {
        for version in ProtocolVersion.allCases {
            let config = try #require(load(httpsGroupDocument("protocol_version: \(version.rawValue)")))
            #expect(config.targetGroups[0].protocolVersion == version)
        }
        let http = try #require(load(httpGroupDocument("protocol_version: http2")))
        #expect(http.targetGroups[0].protocolVersion == .http2)
        #expect(try #require(load(minimalYAML)).targetGroups[0].protocolVersion == .http1)
    }

    /// Each bad group gives exactly one error: `LINE:COLUMN PATH` and its message.
    @Test(arguments: [
        // (group protocol, extra, position, message)
        ("tcp", "protocol_version: http2", "6:5 target_groups[0].protocol_version",
         "\"protocol_version\" is used only by http and https groups; this group's protocol is tcp"),
        ("tls", "protocol_version: grpc", "6:5 target_groups[0].protocol_version",
         "\"protocol_version\" is used only by http and https groups; this group's protocol is tls"),
        ("http", "protocol_version: http3", "6:23 target_groups[0].protocol_version",
         "expected http1, http2 or grpc, got \"http3\""),
        ("http", "tls: { verify: false }", "6:5 target_groups[0].tls",
         "\"tls\" says how Sluice speaks TLS to the targets of https and tls groups; this group's protocol is http"),
        ("tcp", "tls: { verify: false }", "6:5 target_groups[0].tls",
         "\"tls\" says how Sluice speaks TLS to the targets of https and tls groups; this group's protocol is tcp"),
        ("https", "tls: { verify: no }", "6:20 target_groups[0].tls.verify", "expected true or false, got \"no\""),
        ("https", "tls: { ca_file: /nonexistent-sluice-test/ca.pem }", "6:21 target_groups[0].tls.ca_file",
         "cannot read /nonexistent-sluice-test/ca.pem: No such file or directory"),
        ("tls", "tls: { verify: false, ca_file: $DIR/ca.pem }", "6:27 target_groups[0].tls.ca_file",
         "\"ca_file\" is used only to verify targets; this group has verify: false"),
        ("https", "tls: { server_name: 10.0.0.1 }", "6:25 target_groups[0].tls.server_name",
         "expected a DNS name such as api.internal (SNI carries no IP address), got \"10.0.0.1\""),
        ("https", "tls: { server_name: \"bad name\" }", "6:25 target_groups[0].tls.server_name",
         "expected a DNS name such as api.internal (SNI carries no IP address), got \"bad name\""),
        ("https", "tls: { verfy: false }", "6:12 target_groups[0].tls.verfy",
         "unknown key \"verfy\" (did you mean \"verify\"?); allowed keys: verify, ca_file, server_name"),
        ("http", "protocol_version: grpc\nhealth_check: { matcher: \"17\" }",
         "7:30 target_groups[0].health_check.matcher",
         "expected gRPC status codes and ranges from 0 to 16 such as \"0\" or \"0,2-4\", got \"17\""),
        ("http", "health_check: { matcher: \"0\" }", "6:30 target_groups[0].health_check.matcher",
         "expected status codes and ranges from 100 to 599 such as \"200,204,300-399\", got \"0\""),
        ("https", "health_check: { protocol: h2 }", "6:31 target_groups[0].health_check.protocol",
         "expected tcp, http or https, got \"h2\""),
    ])
    func refusals(groupProtocol: String, extra: String, position: String, message: String) throws {
        let directory = try temporaryDirectory(files: certificateFiles)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The listener fits every group protocol here: tcp and tls groups get a tcp listener.
        let document =
            isHTTPName(groupProtocol)
            ? httpGroupDocument(extra.replacingOccurrences(of: "$DIR", with: directory))
            : groupDocument(extra.replacingOccurrences(of: "$DIR", with: directory))
        let yaml = document.replacingOccurrences(of: "    protocol: tcp\n", with: "    protocol: \(groupProtocol)\n")
            .replacingOccurrences(of: "    protocol: http\n", with: "    protocol: \(groupProtocol)\n")
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [position])
        #expect(errors.map(\.message) == [message])
    }

    @Test func grpcHealthCheckDefaults() throws {
        let plain = try #require(load(httpGroupDocument("protocol_version: grpc")))
        #expect(
            plain.targetGroups[0].healthCheck
                == HealthCheckConfig(protocolKind: .http, path: "", matcher: [0...0], grpc: true))
        let secure = try #require(load(httpsGroupDocument("protocol_version: grpc")))
        #expect(
            secure.targetGroups[0].healthCheck
                == HealthCheckConfig(protocolKind: .https, path: "", matcher: [0...0], grpc: true))
        // A health_check mapping without path and matcher keeps the gRPC defaults.
        let partial = try #require(load(httpGroupDocument("protocol_version: grpc\nhealth_check: { interval: 10s }")))
        #expect(
            partial.targetGroups[0].healthCheck
                == HealthCheckConfig(
                    protocolKind: .http, path: "", interval: 10 * Nanoseconds.second, matcher: [0...0], grpc: true))
    }

    @Test func grpcHealthCheckKeys() throws {
        let config = try #require(
            load(
                httpGroupDocument(
                    "protocol_version: grpc\n"
                        + "health_check: { protocol: https, path: my.pkg.Greeter, matcher: \"0,2-4\" }")))
        #expect(
            config.targetGroups[0].healthCheck
                == HealthCheckConfig(
                    protocolKind: .https, path: "my.pkg.Greeter", matcher: [0...0, 2...4], grpc: true))
        // A tcp check of a grpc group is a plain connect.
        let tcp = try #require(load(httpGroupDocument("protocol_version: grpc\nhealth_check: { protocol: tcp }")))
        #expect(tcp.targetGroups[0].healthCheck == HealthCheckConfig(protocolKind: .tcp))
        // http2 groups keep ordinary http checks.
        let http2 = try #require(load(httpGroupDocument("protocol_version: http2")))
        #expect(http2.targetGroups[0].healthCheck == HealthCheckConfig(protocolKind: .http))
    }

    /// https checks are accepted on any group (they verify with the GroupTLSConfig defaults
    /// where the group has no tls).
    @Test func httpsChecksOnAnyGroup() throws {
        let tcp = try #require(load(groupDocument("health_check: { protocol: https, path: /healthz }")))
        #expect(tcp.targetGroups[0].healthCheck == HealthCheckConfig(protocolKind: .https, path: "/healthz"))
        #expect(tcp.targetGroups[0].tls == nil)
        let http = try #require(load(httpGroupDocument("health_check: { protocol: https }")))
        #expect(http.targetGroups[0].healthCheck == HealthCheckConfig(protocolKind: .https))
    }
}

/// Whether a protocol name is http or https (the tests' own copy of the rule).
private func isHTTPName(_ name: String) -> Bool {
    name == "http" || name == "https"
}

@Suite struct HTTP2ListenerKeyTests {
    @Test func maxConcurrentStreamsDefaultsAndBounds() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("h2keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func load(_ extra: String) throws -> (Config?, [String]) {
            let yaml = """
            listeners:
              - { name: web, protocol: http, bind: "127.0.0.1:8080", default: { forward: app }\(extra) }
            target_groups:
              - { name: app, protocol: http, targets: [] }

            """
            let path = dir.appendingPathComponent("c\(UUID().uuidString).yaml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                return (try ConfigLoader.load(path: path), [])
            } catch {
                return (nil, error.errors.map(\.description))
            }
        }
        #expect(try load("").0?.listeners[0].http?.maxConcurrentStreams == 128)
        #expect(try load(", max_concurrent_streams: 16").0?.listeners[0].http?.maxConcurrentStreams == 16)
        let bad = try load(", max_concurrent_streams: 0").1
        #expect(bad.count == 1 && bad[0].contains("max_concurrent_streams"), "\(bad)")
        #expect(bad.first?.contains("from 1 to 1000") == true, "\(bad)")
    }
}
