import SluiceHTTP
import Testing

/// A request in test-friendly form; `match` turns it into `RequestFacts`.
private struct Request {
    var method = "GET"
    var host = "example.com"
    var path = "/"
    var query = ""
    var headers: [(String, String)] = []
    /// `"10.1.2.3"` or `"2001:db8::1"` style, parsed by `sourceWords`.
    var source = "192.0.2.1"
}

/// Copies every string into its own buffer, builds the facts and runs `table.match`.
private func match(_ table: RuleTable, _ request: Request) -> Int {
    var buffers: [UnsafeMutableRawBufferPointer] = []
    defer { buffers.forEach { $0.deallocate() } }
    func view(_ text: String) -> UnsafeRawBufferPointer {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        buffer.copyBytes(from: bytes)
        buffers.append(buffer)
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<bytes.count])
    }
    let headers = request.headers.map { (name: view($0.0), value: view($0.1)) }
    let (family, words) = sourceWords(request.source)
    return headers.withUnsafeBufferPointer { headerBuffer in
        table.match(
            RequestFacts(
                method: view(request.method), host: view(request.host), path: view(request.path),
                query: view(request.query), headers: headerBuffer, sourceFamily: family, sourceAddress: words))
    }
}

/// Family and big-endian words of a textual address (a tiny parser, enough for tests).
private func sourceWords(_ text: String) -> (UInt8, (UInt64, UInt64)) {
    let bytes = addressBytes(text)
    var padded = bytes + [UInt8](repeating: 0, count: 16 - bytes.count)
    padded = Array(padded.prefix(16))
    let hi = padded[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let lo = padded[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return (bytes.count == 4 ? 4 : 6, (hi, lo))
}

/// 4 or 16 bytes of `a.b.c.d` or an IPv6 address with at most one `::` (no embedded IPv4).
private func addressBytes(_ text: String) -> [UInt8] {
    if !text.contains(":") { return text.split(separator: ".").map { UInt8($0)! } }
    func groups(_ part: Substring) -> [UInt16] {
        part.split(separator: ":").map { UInt16($0, radix: 16)! }
    }
    var head: [UInt16] = []
    var tail: [UInt16] = []
    if let gap = text.firstRange(of: "::") {
        head = groups(text[..<gap.lowerBound])
        tail = groups(text[gap.upperBound...])
    } else {
        head = groups(text[...])
    }
    let all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
}

private func cidr(_ text: String) -> (family: UInt8, bytes: [UInt8], prefix: Int) {
    let parts = text.split(separator: "/")
    let bytes = addressBytes(String(parts[0]))
    return (bytes.count == 4 ? 4 : 6, bytes, Int(parts[1])!)
}

/// A table of one rule (action 1) with default action 0.
private func one(_ rule: RuleTable.Rule) -> RuleTable {
    var rule = rule
    rule.action = 1
    return RuleTable(rules: [rule], defaultAction: 0)
}

@Suite struct RuleMatcherTests {
    @Test func hostIsCaseInsensitiveWithWildcards() {
        let table = one(RuleTable.Rule(hosts: ["api.example.com", "*.API.example.com"], action: 1))
        #expect(match(table, Request(host: "api.example.com")) == 1)
        #expect(match(table, Request(host: "API.Example.COM")) == 1)
        #expect(match(table, Request(host: "v2.api.example.com")) == 1)
        #expect(match(table, Request(host: "a.b.API.EXAMPLE.com")) == 1)
        #expect(match(table, Request(host: ".api.example.com")) == 1)  // `*` may match nothing
        #expect(match(table, Request(host: "api.example.com.evil")) == 0)
        #expect(match(table, Request(host: "xapi.example.com")) == 0)
        #expect(match(table, Request(host: "")) == 0)
    }

    @Test func pathIsCaseSensitive() {
        let table = one(RuleTable.Rule(paths: ["/v2/*", "/Exact"], action: 1))
        #expect(match(table, Request(path: "/v2/")) == 1)
        #expect(match(table, Request(path: "/v2/users/7")) == 1)
        #expect(match(table, Request(path: "/V2/users")) == 0)
        #expect(match(table, Request(path: "/v2")) == 0)
        #expect(match(table, Request(path: "/Exact")) == 1)
        #expect(match(table, Request(path: "/exact")) == 0)
        #expect(match(table, Request(path: "/Exact/")) == 0)
    }

    @Test func wildcardEdgeCases() {
        func matches(_ pattern: String, _ path: String) -> Bool {
            match(one(RuleTable.Rule(paths: [pattern], action: 1)), Request(path: path)) == 1
        }
        // `*` alone and runs of stars.
        #expect(matches("*", ""))
        #expect(matches("*", "/anything/at/all"))
        #expect(matches("**", "/x"))
        #expect(matches("/a**b", "/ab"))
        // Several stars: `a*b*c`.
        #expect(matches("a*b*c", "abc"))
        #expect(matches("a*b*c", "aXXbYYc"))
        #expect(matches("a*b*c", "abbbc"))
        #expect(matches("a*b*c", "acbc"))
        #expect(matches("a*b*c", "abcbc"))
        #expect(!matches("a*b*c", "acb"))
        #expect(!matches("a*b*c", "abcx"))
        #expect(!matches("a*b*c", "xabc"))
        // Backtracking past a false start.
        #expect(matches("*aab", "aaab"))
        #expect(matches("/*/edit", "/a/b/edit"))
        #expect(!matches("/*/edit", "/a/b/edits"))
        // `?` is exactly one character.
        #expect(matches("/?", "/a"))
        #expect(!matches("/?", "/"))
        #expect(!matches("/?", "/ab"))
        #expect(matches("/??/*", "/ab/c"))
        #expect(matches("/*?", "/a"))
        #expect(!matches("/*?", "/"))
        #expect(matches("/?", "/é"))  // one character, two bytes
        #expect(matches("/caf?", "/café"))
        #expect(!matches("/caf??", "/café"))
        // Prefix and suffix fast paths agree with the general matcher.
        #expect(matches("*.png", "/img/a.png"))
        #expect(!matches("*.png", "/img/a.pngx"))
        #expect(matches("/static*", "/static"))
        #expect(matches("/a?c*", "/abcdef"))
        // Pathological input stays correct (and quick: no exponential backtracking).
        let long = String(repeating: "a", count: 2000)
        #expect(!matches("*a*a*a*a*a*a*a*b", long))
        #expect(matches("*a*a*a*a*a*a*a*a", long))
    }

    @Test func methodIsExact() {
        let table = one(RuleTable.Rule(methods: ["GET", "POST"], action: 1))
        #expect(match(table, Request(method: "GET")) == 1)
        #expect(match(table, Request(method: "POST")) == 1)
        #expect(match(table, Request(method: "get")) == 0)
        #expect(match(table, Request(method: "PUT")) == 0)
        #expect(match(table, Request(method: "GETX")) == 0)
    }

    @Test func headers() {
        let table = one(RuleTable.Rule(headers: [(name: "X-Canary", values: ["true", "y*s"])], action: 1))
        #expect(match(table, Request(headers: [("x-canary", "true")])) == 1)
        #expect(match(table, Request(headers: [("X-CANARY", "TRUE")])) == 1)
        #expect(match(table, Request(headers: [("x-canary", "Yes")])) == 1)
        #expect(match(table, Request(headers: [("x-canary", " true ")])) == 1)
        #expect(match(table, Request(headers: [("x-canary", "false")])) == 0)
        #expect(match(table, Request(headers: [("x-canary-2", "true")])) == 0)
        #expect(match(table, Request(headers: [])) == 0)
        // Any occurrence may match.
        #expect(match(table, Request(headers: [("x-canary", "no"), ("accept", "*/*"), ("X-Canary", "yes")])) == 1)
        // Every header condition must hold.
        let two = one(RuleTable.Rule(headers: [(name: "a", values: ["1"]), (name: "b", values: ["*"])], action: 1))
        #expect(match(two, Request(headers: [("a", "1"), ("b", "")])) == 1)
        #expect(match(two, Request(headers: [("a", "1")])) == 0)
        #expect(match(two, Request(headers: [("b", "x"), ("a", "2")])) == 0)
    }

    @Test func queryIsPercentDecoded() {
        let table = one(RuleTable.Rule(queries: [(key: "version", values: ["2", "two words", "a&b"])], action: 1))
        #expect(match(table, Request(query: "version=2")) == 1)
        #expect(match(table, Request(query: "a=1&version=2&b")) == 1)
        #expect(match(table, Request(query: "%76ersion=%32")) == 1)
        #expect(match(table, Request(query: "Version=2")) == 1)  // case-insensitive, as ALB
        #expect(match(table, Request(query: "version=two+words")) == 1)
        #expect(match(table, Request(query: "version=two%20Words")) == 1)
        #expect(match(table, Request(query: "version=a%26b")) == 1)
        #expect(match(table, Request(query: "version=a&b")) == 0)  // `&` splits pairs
        #expect(match(table, Request(query: "version=3")) == 0)
        #expect(match(table, Request(query: "version=22")) == 0)
        #expect(match(table, Request(query: "versions=2")) == 0)
        #expect(match(table, Request(query: "")) == 0)
        // Malformed escapes stay literal.
        let literal = one(RuleTable.Rule(queries: [(key: "p", values: ["100%", "%zz"])], action: 1))
        #expect(match(literal, Request(query: "p=100%")) == 1)
        #expect(match(literal, Request(query: "p=%zz")) == 1)
        #expect(match(literal, Request(query: "p=100%2")) == 0)
    }

    @Test func queryStarMatchesAnyValueOfAPresentKey() {
        let table = one(RuleTable.Rule(queries: [(key: "debug", values: ["*"])], action: 1))
        #expect(match(table, Request(query: "debug=1")) == 1)
        #expect(match(table, Request(query: "debug=")) == 1)
        #expect(match(table, Request(query: "x=1&debug")) == 1)
        #expect(match(table, Request(query: "x=debug")) == 0)
        #expect(match(table, Request(query: "")) == 0)
        let pattern = one(RuleTable.Rule(queries: [(key: "q", values: ["a*z", "?"])], action: 1))
        #expect(match(pattern, Request(query: "q=a%2Fz")) == 1)
        #expect(match(pattern, Request(query: "q=%41bcZ")) == 1)
        #expect(match(pattern, Request(query: "q=%41")) == 1)
        #expect(match(pattern, Request(query: "q=ab")) == 0)
    }

    @Test func sourceIPv4Boundaries() {
        let table = one(RuleTable.Rule(sources: [cidr("10.0.0.0/8"), cidr("192.168.1.128/25")], action: 1))
        #expect(match(table, Request(source: "10.0.0.0")) == 1)
        #expect(match(table, Request(source: "10.255.255.255")) == 1)
        #expect(match(table, Request(source: "11.0.0.0")) == 0)
        #expect(match(table, Request(source: "9.255.255.255")) == 0)
        #expect(match(table, Request(source: "192.168.1.128")) == 1)
        #expect(match(table, Request(source: "192.168.1.255")) == 1)
        #expect(match(table, Request(source: "192.168.1.127")) == 0)
        // A v4 range does not match a v6 client, except an IPv4-mapped one.
        #expect(match(table, Request(source: "a00::1")) == 0)
        #expect(match(table, Request(source: "::ffff:a00:1")) == 1)
        #expect(match(table, Request(source: "::ffff:b00:1")) == 0)
        let all = one(RuleTable.Rule(sources: [cidr("0.0.0.0/0")], action: 1))
        #expect(match(all, Request(source: "255.255.255.255")) == 1)
        #expect(match(all, Request(source: "::1")) == 0)
        let host = one(RuleTable.Rule(sources: [cidr("10.1.2.3/32")], action: 1))
        #expect(match(host, Request(source: "10.1.2.3")) == 1)
        #expect(match(host, Request(source: "10.1.2.4")) == 0)
    }

    @Test func sourceIPv6Boundaries() {
        let table = one(
            RuleTable.Rule(
                sources: [cidr("2001:db8::/32"), cidr("::1/128"), cidr("fd00:0:0:1::/65")], action: 1))
        #expect(match(table, Request(source: "2001:db8::")) == 1)
        #expect(match(table, Request(source: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")) == 1)
        #expect(match(table, Request(source: "2001:db9::")) == 0)
        #expect(match(table, Request(source: "2001:db7:ffff::")) == 0)
        #expect(match(table, Request(source: "::1")) == 1)
        #expect(match(table, Request(source: "::2")) == 0)
        // /65: the first bit of the low word decides.
        #expect(match(table, Request(source: "fd00:0:0:1:7fff:ffff:ffff:ffff")) == 1)
        #expect(match(table, Request(source: "fd00:0:0:1:8000::")) == 0)
        #expect(match(table, Request(source: "32.1.13.184")) == 0)  // 2001:db8 read as IPv4
    }

    @Test func conditionsAreANDedAndValuesORed() {
        let table = one(
            RuleTable.Rule(
                hosts: ["a.example", "b.example"], paths: ["/api/*"], methods: ["GET"],
                headers: [(name: "x", values: ["1"])], queries: [(key: "v", values: ["2"])],
                sources: [cidr("10.0.0.0/8")], action: 1))
        let hit = Request(
            method: "GET", host: "b.example", path: "/api/x", query: "v=2", headers: [("x", "1")], source: "10.0.0.1")
        #expect(match(table, hit) == 1)
        var miss = hit
        miss.host = "c.example"
        #expect(match(table, miss) == 0)
        miss = hit
        miss.path = "/web"
        #expect(match(table, miss) == 0)
        miss = hit
        miss.method = "POST"
        #expect(match(table, miss) == 0)
        miss = hit
        miss.headers = []
        #expect(match(table, miss) == 0)
        miss = hit
        miss.query = "v=3"
        #expect(match(table, miss) == 0)
        miss = hit
        miss.source = "11.0.0.1"
        #expect(match(table, miss) == 0)
    }

    @Test func firstMatchInPriorityOrderWinsAndDefaultOtherwise() {
        let table = RuleTable(
            rules: [
                RuleTable.Rule(paths: ["/api/v2/*"], action: 7),
                RuleTable.Rule(paths: ["/api/*"], action: 3),
                RuleTable.Rule(methods: ["POST"], action: 5),
            ], defaultAction: 9)
        #expect(match(table, Request(path: "/api/v2/users")) == 7)
        #expect(match(table, Request(path: "/api/v1/users")) == 3)
        #expect(match(table, Request(method: "POST", path: "/api/v1")) == 3)
        #expect(match(table, Request(method: "POST", path: "/other")) == 5)
        #expect(match(table, Request(path: "/other")) == 9)
        #expect(RuleTable(rules: [], defaultAction: 4).count == 0)
        #expect(match(RuleTable(rules: [], defaultAction: 4), Request()) == 4)
    }

    @Test func aThousandRules() {
        var rules: [RuleTable.Rule] = []
        for i in 0..<1000 {
            switch i % 4 {
            case 0: rules.append(RuleTable.Rule(hosts: ["h\(i).example.com"], action: i))
            case 1: rules.append(RuleTable.Rule(paths: ["/r\(i)/*"], action: i))
            case 2: rules.append(RuleTable.Rule(headers: [(name: "x-rule", values: ["\(i)"])], action: i))
            default: rules.append(RuleTable.Rule(queries: [(key: "rule", values: ["\(i)"])], action: i))
            }
        }
        let table = RuleTable(rules: rules, defaultAction: -1)
        #expect(table.count == 1000)
        for i in stride(from: 0, to: 1000, by: 37) {
            let request: Request
            switch i % 4 {
            case 0: request = Request(host: "H\(i).example.com")
            case 1: request = Request(path: "/r\(i)/x")
            case 2: request = Request(headers: [("X-Rule", "\(i)")])
            default: request = Request(query: "rule=\(i)")
            }
            #expect(match(table, request) == i, "rule \(i)")
        }
        #expect(match(table, Request(host: "none.example.com", path: "/none")) == -1)
        // The earlier of two matching rules wins even far down the table.
        #expect(match(table, Request(path: "/r997/x", headers: [("x-rule", "998")])) == 997)
    }
}
