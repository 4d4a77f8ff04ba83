import Foundation
import SluiceConfig
import Testing

/// Keys and values of later releases are refused at the key, saying so, and told apart from typos.
@Suite struct LaterFeatureTests {
    @Test(arguments: [
        "rules: []", "desync_mitigation: defensive", "xff: append", "header_timeout: 5s",
        "response_timeout: 5s", "max_request_body: 1048576", "max_header_bytes: 8K", "max_headers: 50",
        "max_request_line: 4096", "retry_idempotent: true",
    ])
    func httpListenerKeysAreRefusedOnTCPListeners(line: String) {
        let key = String(line.prefix { $0 != ":" })
        #expect(
            loadErrors(listenerDocument(line)) == [
                ConfigError(
                    file: testFile, line: 6, column: 5, path: "listeners[0].\(key)",
                    message: "\"\(key)\" is a key of http and https listeners; this listener's protocol is tcp")
            ])
    }

    @Test func tlsIsAKeyOfTLSListenersOnly() {
        let errors = loadErrors(listenerDocument("tls: { certificates: [] }"))
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == ["6:5 listeners[0].tls"])
        #expect(
            errors.first?.message
                == "\"tls\" is a key of https and tls listeners, which terminate TLS; this listener's protocol is tcp")
    }

    @Test func formerlyLaterGroupValuesLoad() throws {
        let yaml = groupDocument(
            """
            algorithm: random_two
            health_check: { protocol: https }
            """)
        // random_two balances tcp groups by connections in flight; https checks arrived with TLS.
        let group = try #require(load(yaml)).targetGroups[0]
        #expect(group.algorithm == .randomTwo)
        #expect(group.healthCheck?.protocolKind == .https)
    }

    @Test func laterActionsAreRefused() {
        let yaml = listenerDocument("").replacingOccurrences(of: "{ forward: db }", with: "{ respond: { status: 200 } }")
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == ["5:16 listeners[0].default.respond"])
    }

    @Test func typoOfALaterKeyIsUnknownNotLater() {
        let errors = loadErrors(listenerDocument("rulez: []"))
        #expect(errors.count == 1)
        #expect(errors[0].message.hasPrefix("unknown key \"rulez\" (did you mean \"rules\"?); allowed keys: name,"))
    }
}

@Suite struct DurationBoundTests {
    /// Deadlines are `now + duration` in nanoseconds: durations are capped at a year so none
    /// can overflow; beyond it the key is named with its position.
    @Test func durationsBeyondAYearAreRefused() {
        let errors = loadErrors(listenerDocument("idle_timeout: 9000h"))
        #expect(errors.map(\.path) == ["listeners[0].idle_timeout"])
        #expect(errors.first?.message == "expected a duration of at most 365 days (8760h), got \"9000h\"")
        #expect(loadErrors(listenerDocument("idle_timeout: 8760h")).isEmpty)
    }
}

@Suite struct ConfigSizeTests {
    /// Compiled rules keep 32-bit offsets into their text: a config file is at most 16 MiB.
    @Test func aHugeConfigFileIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(repeating: UInt8(ascii: "#"), count: ConfigLoader.maxFileBytes + 1).write(to: URL(fileURLWithPath: path))
        let errors = loadErrors(path: path)
        #expect(errors.first?.message == "cannot read the config file: larger than 16 MiB")
    }
}
