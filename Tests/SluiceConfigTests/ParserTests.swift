import SluiceConfig
import Testing

/// `DurationParser` and `AddressParser` tables.
@Suite struct ParserTests {
    static let second = Nanoseconds.second
    static let millisecond = Nanoseconds.millisecond

    static let validDurationCases: [(String, UInt64)] = [
        ("250ms", 250 * millisecond), ("5s", 5 * second), ("2m", 120 * second), ("1h", 3_600 * second),
        ("0s", 0), ("1m30s", 90 * second), ("1h2m3s", 3_723 * second), ("100us", 100_000), ("7ns", 7),
        ("1.5s", 1_500 * millisecond), ("0.25h", 900 * second), (".5ms", 500_000), ("10\u{B5}s", 10_000),
        ("18446744073709551615ns", UInt64.max),
    ]

    @Test(arguments: validDurationCases)
    func validDurations(text: String, nanos: UInt64) {
        #expect(DurationParser.parse(text) == nanos)
    }

    @Test(arguments: [
        "", "5", "0", "-5s", "+5s", "5 s", " 5s", "5s ", "5 seconds", "s", "5x", "5sec", "1.s.", ".s", "1..5s",
        "18446744073709551616ns", "99999999999h", "5S", "1d",
    ])
    func invalidDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test(arguments: [
        ("1.2.3.4:80", SocketAddressSpec(family: .inet, host: "1.2.3.4", port: 80)),
        ("127.0.0.1:65535", SocketAddressSpec(family: .inet, host: "127.0.0.1", port: 65535)),
        ("[::1]:80", SocketAddressSpec(family: .inet6, host: "::1", port: 80)),
        ("[0:0::1]:443", SocketAddressSpec(family: .inet6, host: "::1", port: 443)),
        ("[::]:8080", SocketAddressSpec(family: .inet6, host: "::", port: 8080)),
        ("*:80", SocketAddressSpec(family: .inet, host: "0.0.0.0", port: 80)),
        ("0.0.0.0:1", SocketAddressSpec(family: .inet, host: "0.0.0.0", port: 1)),
    ])
    func validAddresses(text: String, expected: SocketAddressSpec) {
        #expect(AddressParser.parse(text) == expected)
    }

    @Test func localhostResolvesPreferringIPv4() throws {
        let address = try #require(AddressParser.parse("localhost:8080"))
        #expect(address.port == 8080)
        // Debian's /etc/hosts maps localhost to 127.0.0.1; IPv6-only hosts would give ::1.
        #expect(
            address == SocketAddressSpec(family: .inet, host: "127.0.0.1", port: 8080)
                || address == SocketAddressSpec(family: .inet6, host: "::1", port: 8080))
    }

    @Test(arguments: [
        "", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:http", "1.2.3.4:-1", "1.2.3.4:+80",
        ":80", "::1:80", "[::1]", "[::1]80", "[1.2.3.4]:80", "[::1:80", "1.2.3:80", "256.1.1.1:80",
        "bad_host:80", "-bad:80", "no-such-host.invalid:80", "[::1]:0",
    ])
    func invalidAddresses(text: String) {
        #expect(AddressParser.parse(text) == nil)
    }

    @Test func addressDescriptionRoundTrips() {
        for text in ["1.2.3.4:80", "[::1]:80", "[fe80::1]:9000"] {
            #expect(AddressParser.parse(text)?.description == text)
        }
    }
}
