import Testing

@testable import sluicectl

@Suite struct ArgumentsTests {
    @Test(arguments: [
        "10.0.0.5:8080", "[::1]:80", "[2001:db8::5]:443", "web-1.internal:8080", "localhost:1", "127.0.0.1:65535",
    ])
    func goodAddresses(_ address: String) {
        #expect(Arguments.addressProblem(address) == nil)
    }

    @Test(arguments: [
        ("bad-address", "the port is missing"),
        ("", "the address is empty"),
        ("10.0.0.5", "the port is missing"),
        ("10.0.0.5:", "the port is missing"),
        ("10.0.0.5:0", "port \"0\" is not a number from 1 to 65535"),
        ("10.0.0.5:65536", "port \"65536\" is not a number from 1 to 65535"),
        ("10.0.0.5:http", "port \"http\" is not a number from 1 to 65535"),
        ("::1:80", "an IPv6 address needs brackets, as in [::1]:80"),
        ("[::1]", "the port is missing"),
        ("[::1", "an IPv6 address needs a closing ]"),
        ("[::1]80", "expected :PORT after ]"),
        ("[nope]:80", "\"nope\" is not an IPv6 address"),
        ("10.0.0.256:80", "\"10.0.0.256\" is not an IPv4 address"),
        ("1.2.3:80", "\"1.2.3\" is not an IPv4 address"),
        (":80", "the host is missing"),
        ("-web:80", "\"-web\" is not a valid host name"),
        ("we b:80", "\"we b\" is not a valid host name"),
        ("*:80", "\"*\" is not a valid host name"),
    ])
    func badAddresses(_ address: String, _ problem: String) {
        #expect(Arguments.addressProblem(address) == problem)
    }

    @Test func addressErrorShowsTheExpectedForm() throws {
        let message = try #require(Arguments.addressError("bad-address"))
        #expect(message == "invalid address \"bad-address\": the port is missing (expected HOST:PORT, IPv6 as [::1]:80)")
    }

    @Test func weights() {
        #expect(Arguments.weightError(nil) == nil)
        #expect(Arguments.weightError(0) == nil)
        #expect(Arguments.weightError(999) == nil)
        #expect(Arguments.weightError(1000) != nil)
        #expect(Arguments.weightError(-1) != nil)
    }

    @Test func durations() {
        #expect(Arguments.seconds(ofDuration: "5m") == 300)
        #expect(Arguments.seconds(ofDuration: "90s") == 90)
        #expect(Arguments.seconds(ofDuration: "1h30m") == 5_400)
        #expect(Arguments.seconds(ofDuration: "1500ms") == 2)  // rounded up
        #expect(Arguments.seconds(ofDuration: "1ms") == 1)
        for bad in ["0s", "", "5", "five minutes", "-5m", "5 m", "5d"] {
            #expect(Arguments.seconds(ofDuration: bad) == nil, "\(bad)")
        }
    }

    @Test func zones() {
        #expect(Arguments.zoneError(nil) == nil)
        #expect(Arguments.zoneError("zone-b") == nil)
        #expect(Arguments.zoneError("") != nil)
        #expect(Arguments.zoneError("zone b") != nil)
    }

    @Test func percentEncoding() {
        #expect(Arguments.pathSegment("[::1]:80") == "%5B%3A%3A1%5D%3A80")
        #expect(Arguments.pathSegment("10.0.0.5:8080") == "10.0.0.5%3A8080")
        #expect(Arguments.pathSegment("web-1_a.b~c") == "web-1_a.b~c")
        #expect(Arguments.pathSegment("a/b c+%") == "a%2Fb%20c%2B%25")
        #expect(Arguments.pathSegment("zône") == "z%C3%B4ne")
    }

    @Test func globalOptionsMayComeBeforeTheSubcommand() {
        let h = Arguments.hoistingGlobalOptions
        #expect(h(["--socket", "/s", "status"]) == ["status", "--socket", "/s"])
        #expect(h(["--json", "--socket=/s", "targets", "list", "app"]) == ["targets", "list", "app", "--json", "--socket=/s"])
        #expect(h(["targets", "--socket", "/s", "register", "app", "10.0.0.1:80", "--zone", "z"])
            == ["targets", "register", "app", "10.0.0.1:80", "--zone", "z", "--socket", "/s"])
        #expect(h(["status", "--json"]) == ["status", "--json"], "already last: unchanged")
        #expect(h(["events", "redeliver", "--", "--json"]) == ["events", "redeliver", "--", "--json"], "after -- stays a word")
        #expect(h(["--json", "scale", "app", "--", "3"]) == ["scale", "app", "--json", "--", "3"])
        #expect(h(["status", "--socket"]) == ["status", "--socket"], "no value: left for the parser to refuse")
        #expect(h([]) == [])
    }
}
