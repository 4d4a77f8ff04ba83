import SluiceConfig
import Testing

/// http target groups: algorithms, `hash_key` and `stickiness`.
@Suite struct HTTPGroupConfigTests {
    private func group(_ extra: String) -> TargetGroupConfig? {
        load(httpGroupDocument(extra))?.targetGroups[0]
    }

    @Test(arguments: [
        ("algorithm: round_robin", AlgorithmKind.roundRobin), ("algorithm: least_outstanding", .leastOutstanding),
        ("algorithm: random_two", .randomTwo), ("", .roundRobin),
    ])
    func httpAlgorithms(line: String, algorithm: AlgorithmKind) {
        let group = group(line)
        #expect(group?.algorithm == algorithm)
        #expect(group?.hashKey == nil)
        #expect(group?.stickiness == nil)
    }

    @Test func hashAlgorithmsWithTheirKeys() {
        let header = group("algorithm: header_hash\nhash_key: { header: X-User-ID }")
        #expect(header?.algorithm == .headerHash)
        #expect(header?.hashKey == .header("x-user-id"))
        let cookie = group("algorithm: cookie_hash\nhash_key: { cookie: Session }")
        #expect(cookie?.algorithm == .cookieHash)
        #expect(cookie?.hashKey == .cookie("Session"))
    }

    @Test func flowHashDoesNotFitHTTPGroups() {
        #expect(
            loadErrors(httpGroupDocument("algorithm: flow_hash")) == [
                ConfigError(
                    file: testFile, line: 6, column: 16, path: "target_groups[0].algorithm",
                    message: "flow_hash hashes connections and does not fit an http group; http groups use "
                        + "round_robin, least_outstanding, random_two, header_hash or cookie_hash")
            ])
        #expect(
            loadErrors(httpGroupDocument("algorithm: fastest")).map(\.message) == [
                "expected round_robin, least_outstanding, random_two, header_hash or cookie_hash, got \"fastest\""
            ])
    }

    @Test func hashAlgorithmsNeedAnHTTPGroup() {
        #expect(
            loadErrors(groupDocument("algorithm: header_hash\nhash_key: { header: x-user }")) == [
                ConfigError(
                    file: testFile, line: 6, column: 16, path: "target_groups[0].algorithm",
                    message: "header_hash needs an http group, this one's protocol is tcp; tcp groups use "
                        + "round_robin, least_outstanding, random_two or flow_hash")
            ])
    }

    @Test func hashKeyErrors() {
        let cases: [(String, String)] = [
            (
                "algorithm: header_hash",
                "4:5 target_groups[0].hash_key: missing required key \"hash_key\" (header_hash hashes on "
                    + "{ header: NAME })"
            ),
            (
                "algorithm: header_hash\nhash_key: { cookie: s }",
                "7:17 target_groups[0].hash_key.cookie: header_hash hashes on a header, as in { header: NAME }, "
                    + "not a cookie"
            ),
            (
                "hash_key: { header: x-user }",
                "6:5 target_groups[0].hash_key: \"hash_key\" is used only by header_hash and cookie_hash; this "
                    + "group's algorithm is round_robin"
            ),
            (
                "algorithm: cookie_hash\nhash_key: { cookie: a, header: b }",
                "7:15 target_groups[0].hash_key: expected exactly one of header or cookie, as in "
                    + "{ header: x-user-id }, got both"
            ),
            (
                "algorithm: cookie_hash\nhash_key: { cookie: \"a b\" }",
                "7:25 target_groups[0].hash_key.cookie: expected a cookie name, got \"a b\""
            ),
            (
                "algorithm: cookie_hash\nhash_key: { name: a }",
                "7:17 target_groups[0].hash_key.name: unknown key \"name\"; allowed keys: header, cookie"
            ),
        ]
        for (extra, expected) in cases {
            let errors = loadErrors(httpGroupDocument(extra)).map { "\($0.line):\($0.column) \($0.path): \($0.message)" }
            #expect(errors.first == expected, "\(extra)")
        }
    }

    @Test func stickiness() {
        #expect(
            group("stickiness: { cookie: SLUICE }")?.stickiness
                == Stickiness(cookie: "SLUICE", duration: 86_400 * Nanoseconds.second))
        #expect(
            group("stickiness: { cookie: s, duration: 30m }")?.stickiness
                == Stickiness(cookie: "s", duration: 1800 * Nanoseconds.second))
        #expect(
            loadErrors(httpGroupDocument("stickiness: { cookie: s, duration: 169h }")) == [
                ConfigError(
                    file: testFile, line: 6, column: 40, path: "target_groups[0].stickiness.duration",
                    message: "expected a duration from 1s to 7 days (168h), got \"169h\"")
            ])
        #expect(
            loadErrors(httpGroupDocument("stickiness: { duration: 1h }")).map(\.message) == [
                "missing required key \"cookie\" (the name of the cookie Sluice sets)"
            ])
        #expect(
            loadErrors(groupDocument("stickiness: { cookie: s }")) == [
                ConfigError(
                    file: testFile, line: 6, column: 5, path: "target_groups[0].stickiness",
                    message: "\"stickiness\" works per HTTP request and needs an http group; this group's protocol "
                        + "is tcp")
            ])
    }

    @Test func byteSizes() {
        #expect(ByteSizeParser.parse("0") == 0)
        #expect(ByteSizeParser.parse("1_024") == 1024)
        #expect(ByteSizeParser.parse("64k") == 65_536)
        #expect(ByteSizeParser.parse("1KiB") == 1024)
        #expect(ByteSizeParser.parse("1KB") == 1000)
        #expect(ByteSizeParser.parse("10M") == 10_485_760)
        #expect(ByteSizeParser.parse("10mb") == 10_000_000)
        #expect(ByteSizeParser.parse("1G") == 1_073_741_824)
        #expect(ByteSizeParser.parse("512B") == 512)
        for bad in ["", "K", "1.5K", "-1", "1 K", "1T", "_1", "99999999999999999999", "17179869184G"] {
            #expect(ByteSizeParser.parse(bad) == nil, "\(bad)")
        }
    }
}
