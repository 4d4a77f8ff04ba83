import Testing
@testable import SluiceHTTP

@Suite("HTTPRequestParser")
struct HTTPRequestParserTests {
    static let samples: [String] = [
        "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n",
        "\r\nGET http://example.com/p?q HTTP/1.0\r\nConnection: keep-alive\r\nX-A: 1\r\n  folded\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\nX: \u{01}\n\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    ]

    /// A head split at every byte boundary (two calls) parses exactly like one call.
    @Test(arguments: samples)
    func splitAtEveryBoundary(_ s: String) {
        let raw = bytes(s)
        let (r1, p1) = parseRequest(raw)
        #expect(r1 == .complete)
        let whole = summary(raw, p1.head)
        for k in 0...raw.count {
            var p = HTTPRequestParser()
            var r = raw.withUnsafeBytes { p.parse(UnsafeRawBufferPointer(rebasing: $0[..<k])) }
            if r == .needMore { r = raw.withUnsafeBytes { p.parse($0) } }
            #expect(r == .complete)
            #expect(summary(raw, p.head) == whole, "split at \(k)")
        }
        let (r3, p3) = parseRequestByteByByte(raw)
        #expect(r3 == .complete)
        #expect(summary(raw, p3.head) == whole)
    }

    @Test func fieldsOfASimpleGet() {
        let raw = bytes(Self.samples[0])
        let (r, p) = parseRequest(raw)
        #expect(r == .complete)
        let h = p.head
        #expect(text(raw, h.method) == "GET" && h.methodKind == .get)
        #expect(text(raw, h.target) == "/a/b?x=1&y=2")
        #expect(text(raw, h.path) == "/a/b")
        #expect(text(raw, h.query) == "x=1&y=2")
        #expect(h.versionMinor == 1)
        #expect(text(raw, h.host!) == "example.com:8080")
        #expect(h.headers.count == 3)
        #expect(h.headers[0].kind == .host && text(raw, h.headers[1].name) == "User-Agent")
        #expect(h.framing == .none && h.keepAlive && !h.expectContinue && !h.upgradeWebSocket)
        #expect(h.verdict == .compliant && h.headLength == raw.count)
    }

    @Test func bodyBytesAreNotPartOfTheHead() {
        let raw = bytes(Self.samples[1])
        let (r, p) = parseRequest(raw)
        #expect(r == .complete)
        #expect(p.head.headLength == raw.count - 5)
        #expect(p.head.framing == .contentLength(5))
        #expect(p.head.expectContinue)
    }

    @Test func webSocketUpgrade() {
        let (_, p) = parseRequest(bytes(Self.samples[3]))
        #expect(p.head.upgradeWebSocket)
        let (_, q) = parseRequest(bytes("POST /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
        #expect(!q.head.upgradeWebSocket)
        let (_, r) = parseRequest(bytes("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"))
        #expect(!r.head.upgradeWebSocket)
    }

    @Test func absoluteFormHTTP10KeepAliveAndFold() {
        let raw = bytes(Self.samples[4])
        let (r, p) = parseRequest(raw)
        #expect(r == .complete)
        let h = p.head
        #expect(h.versionMinor == 0 && h.keepAlive)
        #expect(text(raw, h.host!) == "example.com")
        #expect(text(raw, h.path) == "/p" && text(raw, h.query) == "q")
        #expect(text(raw, h.headers[1].value) == "1\r\n  folded")
        #expect(h.verdict.klass == .ambiguous && h.verdict.reason == .multilineHeader)
    }

    @Test func keepAliveRules() {
        #expect(parseRequest(bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")).1.head.keepAlive == false)
        #expect(parseRequest(bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n")).1.head.keepAlive == false)
        #expect(parseRequest(bytes("GET / HTTP/1.0\r\n\r\n")).1.head.keepAlive == false)
        #expect(parseRequest(bytes("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")).1.head.keepAlive == true)
    }

    @Test func connectAuthorityForm() {
        let raw = bytes(Self.samples[6])
        let (r, p) = parseRequest(raw)
        #expect(r == .complete)
        #expect(p.head.methodKind == .connect)
        #expect(text(raw, p.head.host!) == "example.com:443")
        #expect(p.head.path.isEmpty && p.head.verdict == .compliant)
    }

    @Test(arguments: [
        ("GET\r\n\r\n", DesyncReason.badUri),
        (" / HTTP/1.1\r\n\r\n", .badMethod),
        ("GET /\r\n\r\n", .badVersion),
        ("GET  \r\n\r\n", .badUri),
    ])
    func unparseableRequestLines(_ s: String, _ reason: DesyncReason) {
        #expect(parseRequest(bytes(s)).0 == .error(HTTPParseError(status: 400, reason: reason)))
    }

    @Test func needsMoreUntilTheBlankLine() {
        #expect(parseRequest(bytes("GET / HTTP/1.1\r\nHost: a\r\n")).0 == .needMore)
        #expect(parseRequest(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r")).0 == .needMore)
        #expect(parseRequest(bytes("\r\n\r\n")).0 == .needMore)
        #expect(parseRequest([]).0 == .needMore)
    }

    // MARK: limits

    @Test func requestLineLimitGives414() {
        let limits = HTTPLimits(maxRequestLine: 64)
        let ok = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1"
        #expect(ok.utf8.count == 64)
        #expect(parseRequest(bytes(ok + "\r\nHost: a\r\n\r\n"), limits: limits).0 == .complete)
        let long = "GET /" + String(repeating: "a", count: 64 - 13) + " HTTP/1.1"
        #expect(parseRequest(bytes(long + "\r\nHost: a\r\n\r\n"), limits: limits).0 == .error(.uriTooLong))
        // Also before the line is complete.
        #expect(parseRequest(bytes("GET /" + String(repeating: "a", count: 100)), limits: limits).0 == .error(.uriTooLong))
        #expect(parseRequestByteByByte(bytes(long + "\r\n"), limits: limits).0 == .error(.uriTooLong))
    }

    @Test func headLimitGives431() {
        let limits = HTTPLimits(maxHeadBytes: 100)
        let head = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 60) + "\r\n\r\n"
        #expect(head.utf8.count <= 100)
        #expect(parseRequest(bytes(head), limits: limits).0 == .complete)
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 100) + "\r\n\r\n"
        #expect(parseRequest(bytes(big), limits: limits).0 == .error(.headTooLarge))
        #expect(parseRequestByteByByte(bytes(big), limits: limits).0 == .error(.headTooLarge))
        // Exactly at the limit is fine; one more byte is not.
        let exact = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 100 - 32) + "\r\n\r\n"
        #expect(exact.utf8.count == 100)
        #expect(parseRequest(bytes(exact), limits: limits).0 == .complete)
        let over = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 100 - 31) + "\r\n\r\n"
        #expect(parseRequest(bytes(over), limits: limits).0 == .error(.headTooLarge))
    }

    @Test func headerCountLimitGives431() {
        let limits = HTTPLimits(maxHeaders: 3)
        let three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"
        #expect(parseRequest(bytes(three), limits: limits).0 == .complete)
        let four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        #expect(parseRequest(bytes(four), limits: limits).0 == .error(.headTooLarge))
    }

    @Test func defaultLimitsMatchTheSpec() {
        let l = HTTPLimits()
        #expect(l.maxRequestLine == 16 * 1024 && l.maxHeadBytes == 64 * 1024 && l.maxHeaders == 100)
    }

    // MARK: reuse

    @Test func resetKeepsTheHeaderStorage() {
        var p = HTTPRequestParser(limits: HTTPLimits(maxHeaders: 8))
        let capacity = p.head.headers.capacity
        #expect(capacity >= 8)
        let a = bytes("GET /1 HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n")
        let b = bytes("POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nok")
        for i in 0..<100 {
            let raw = i % 2 == 0 ? a : b
            #expect(raw.withUnsafeBytes { p.parse($0) } == .complete)
            #expect(p.head.headers.capacity == capacity)
            #expect(text(raw, p.head.path) == (i % 2 == 0 ? "/1" : "/2"))
            p.reset()
        }
        #expect(p.head.headers.isEmpty && p.head.headers.capacity == capacity)
    }

    @Test func resultIsStickyUntilReset() {
        var p = HTTPRequestParser()
        let raw = bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n")
        #expect(raw.withUnsafeBytes { p.parse($0) } == .complete)
        #expect(raw.withUnsafeBytes { p.parse($0) } == .complete)
        #expect(p.head.headLength == 27)
        // The next request starts after the head.
        p.reset()
        let rest = Array(raw[27...] + bytes("Host: b\r\n\r\n"))
        #expect(rest.withUnsafeBytes { p.parse($0) } == .complete)
        #expect(text(rest, p.head.path) == "/next")
    }

    @Test func methodKindsAndIdempotence() {
        let known: [(String, HTTPMethod)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
            ("OPTIONS", .options), ("PATCH", .patch), ("TRACE", .trace), ("PROPFIND", .other), ("get", .other),
        ]
        for (m, k) in known {
            let (r, p) = parseRequest(bytes("\(m) / HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(r == .complete)
            #expect(p.head.methodKind == k)
        }
        #expect(HTTPMethod.get.isIdempotent && HTTPMethod.put.isIdempotent && !HTTPMethod.post.isIdempotent)
        #expect(!HTTPMethod.patch.isIdempotent && !HTTPMethod.connect.isIdempotent)
    }

    @Test func knownHeaderNamesAreCaseInsensitive() {
        let names: [(String, HeaderName)] = [
            ("HOST", .host), ("content-length", .contentLength), ("Transfer-encoding", .transferEncoding),
            ("CONNECTION", .connection), ("keep-alive", .keepAlive), ("Proxy-Connection", .proxyConnection),
            ("te", .te), ("Trailer", .trailer), ("upgrade", .upgrade), ("Expect", .expect),
            ("x-forwarded-for", .xForwardedFor), ("X-Forwarded-Proto", .xForwardedProto),
            ("X-FORWARDED-PORT", .xForwardedPort), ("Cookie", .cookie), ("Content\rLength", .other),
        ]
        for (n, k) in names {
            let raw = bytes(n)
            let kind = raw.withUnsafeBytes { HeaderName.match($0, 0, raw.count) }
            #expect(kind == k, "\(n)")
        }
    }
}
