import Testing
import SluiceHTTP
@testable import SluiceHTTP2

/// What an HTTP/1.1 → HTTP/2 translator produced.
struct Translated: Equatable {
    var status = 0
    var head: [String] = []
    var endStream = false
    var body: [UInt8] = []
    var trailers: [String] = []
    var ended = false
    var error = false
}

/// Runs `HTTP1ToH2Response` over `input` cut into pieces of `chunk` bytes.
func translateResponse(_ input: [UInt8], chunk: Int, method: HTTPMethod = .get, eof: Bool = false) -> Translated {
    var t = HTTP1ToH2Response(requestMethod: method)
    var r = Translated()
    var pending: [UInt8] = []
    var off = 0
    outer: while off < input.count || !pending.isEmpty {
        let end = min(input.count, off + chunk)
        pending += input[off..<end]
        off = end
        var used = 0
        inner: while true {
            let (s, n) = pending.withUnsafeBytes { t.step(UnsafeRawBufferPointer(rebasing: $0[used...])) }
            switch s {
            case .head:
                r.status = t.status
                r.head = t.headers.pairs.map { "\($0.0): \($0.1)" }
                r.endStream = t.endStream
            case .body(let range): r.body += pending[(used + range.lowerBound)..<(used + range.upperBound)]
            case .trailers: r.trailers = t.trailers.pairs.map { "\($0.0): \($0.1)" }
            case .end:
                r.ended = true
                used += n
                break outer
            case .error:
                r.error = true
                break outer
            case .needMore:
                used += n
                break inner
            }
            used += n
        }
        pending.removeFirst(used)
        if off >= input.count && pending.isEmpty { break }
        if off >= input.count && !pending.isEmpty {
            // Nothing more will come; the rest must have been consumed.
            break
        }
    }
    if eof && !r.ended && !r.error {
        let s = t.endOfInput()
        if s == .end { r.ended = true } else { r.error = true }
    }
    return r
}

@Suite struct HTTP1ToH2ResponseTests {
    static let chunked = bytes(
        "HTTP/1.1 100 Continue\r\n\r\n"
        + "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
        + "Keep-Alive: timeout=5\r\nX-Custom: a\r\n\r\n"
        + "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nGrpc-Status: 0\r\ngrpc-message: fine\r\nContent-Length: 9\r\n\r\n")

    @Test(arguments: [1, 2, 3, 7, 64, 100_000])
    func chunkedWithTrailersAnySplit(chunk: Int) {
        let r = translateResponse(Self.chunked, chunk: chunk)
        #expect(!r.error)
        #expect(r.status == 200)
        #expect(r.head == ["content-type: application/grpc", "x-custom: a"])
        #expect(!r.endStream)
        #expect(r.body == bytes("hello, world"))
        #expect(r.trailers == ["grpc-status: 0", "grpc-message: fine"])
        #expect(r.ended)
    }

    @Test(arguments: [1, 5, 4096])
    func contentLengthBody(chunk: Int) {
        let r = translateResponse(bytes("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcNEXT"), chunk: chunk)
        #expect(r.status == 201 && r.body == bytes("abc") && r.ended && !r.error)
        #expect(r.head == ["content-length: 3"])
    }

    @Test func noBodyResponses() {
        let r = translateResponse(bytes("HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n"), chunk: 1)
        #expect(r.endStream && r.ended && r.body.isEmpty)
        let h = translateResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), chunk: 3, method: .head)
        #expect(h.endStream && h.ended && h.head == ["content-length: 10"])
    }

    @Test func untilCloseEndsAtEndOfInput() {
        let r = translateResponse(bytes("HTTP/1.0 200 OK\r\n\r\nall of it"), chunk: 4, eof: true)
        #expect(r.body == bytes("all of it") && r.ended && !r.error)
        let cut = translateResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), chunk: 4, eof: true)
        #expect(cut.error)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad name: x\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTX/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header : x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\u{0}b\r\n\r\n",
    ])
    func hostileResponsesAreErrors(text: String) {
        for chunk in [1, 3, 1000] {
            let r = translateResponse(bytes(text), chunk: chunk)
            #expect(r.error, "\(text.debugDescription) chunk \(chunk)")
        }
    }

    @Test func hugeHeadIsAnError() {
        let big = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Fill: " + String(repeating: "a", count: 1000) + "\r\n", count: 80) + "\r\n"
        #expect(translateResponse(bytes(big), chunk: 4096).error)
        let endless = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "b", count: 200_000)
        #expect(translateResponse(bytes(endless), chunk: 8192).error)
        let longTrailer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "c", count: 20_000) + "\r\n\r\n"
        #expect(translateResponse(bytes(longTrailer), chunk: 1000).error)
    }

    @Test func randomInputNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = bytes("HTTP/1.1 200 OK\r\n:;0123456789abcdefxX -\t")
        for _ in 0..<500 {
            var input = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            if Bool.random(using: &rng) { input = [] }
            for _ in 0..<Int.random(in: 0...200, using: &rng) {
                input.append(Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng))
            }
            _ = translateResponse(input, chunk: Int.random(in: 1...50, using: &rng), eof: true)
        }
    }
}

@Suite struct H2ToHTTP1RequestTests {
    func encode(_ head: H2RequestHead, endStream: Bool) -> (String, H2ToHTTP1Request)? {
        var t = H2ToHTTP1Request()
        var out: [UInt8] = []
        guard case .success = t.encodeHead(head, endStream: endStream, into: &out) else { return nil }
        return (String(decoding: out, as: UTF8.self), t)
    }

    @Test func getWithCookiesJoined() throws {
        let head = H2RequestHead(method: "GET", scheme: "https", authority: "shop.example:8443", path: "/cart?id=1",
                                 headers: [("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2"), ("te", "trailers"),
                                           ("cookie", "c=3")])
        let (text, _) = try #require(encode(head, endStream: true))
        #expect(text == "GET /cart?id=1 HTTP/1.1\r\nhost: shop.example:8443\r\ncookie: a=1; b=2; c=3\r\naccept: */*\r\nte: trailers\r\n\r\n")
        // The result parses as a compliant HTTP/1.1 request.
        var p = HTTPRequestParser()
        let b = bytes(text)
        #expect(b.withUnsafeBytes { p.parse($0) } == .complete)
        #expect(p.head.verdict.klass == .compliant)
    }

    @Test func framingRules() throws {
        let post = try #require(encode(H2RequestHead(method: "POST", authority: "a", path: "/"), endStream: true))
        #expect(post.0.hasSuffix("content-length: 0\r\n\r\n"))
        let del = try #require(encode(H2RequestHead(method: "DELETE", authority: "a", path: "/"), endStream: true))
        #expect(!del.0.contains("content-length") && !del.0.contains("transfer-encoding"))
        let cl = try #require(encode(H2RequestHead(method: "PUT", authority: "a", path: "/", headers: [("content-length", "5")]), endStream: false))
        #expect(cl.0.hasSuffix("content-length: 5\r\n\r\n") && !cl.1.encoder.chunked)
        let getZero = try #require(encode(H2RequestHead(method: "GET", authority: "a", path: "/", headers: [("content-length", "0")]), endStream: true))
        #expect(getZero.0 == "GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        let streamed = try #require(encode(H2RequestHead(method: "POST", authority: "a", path: "/up"), endStream: false))
        #expect(streamed.0.hasSuffix("transfer-encoding: chunked\r\n\r\n"))
        var out: [UInt8] = []
        streamed.1.encodeBody(bytes("hello world, this is 31 bytes!!"), into: &out)
        streamed.1.encodeBody([], into: &out)
        streamed.1.encodeEnd(trailers: H2Headers([("grpc-status", "0"), ("content-length", "9")]), into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "1f\r\nhello world, this is 31 bytes!!\r\n0\r\ngrpc-status: 0\r\n\r\n")
    }

    @Test func refusedHeads() {
        #expect(encode(H2RequestHead(method: "GET", authority: "a", path: "/", headers: [("host", "b")]), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "GET", authority: "a b", path: "/"), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "GET", authority: "a", path: "/x y"), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "GET", authority: "a", path: "x"), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "G T", authority: "a", path: "/"), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "CONNECT", authority: "a:443", path: "/"), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "POST", authority: "a", path: "/", headers: [("content-length", "1"), ("content-length", "2")]), endStream: false) == nil)
        #expect(encode(H2RequestHead(method: "GET", authority: "a", path: "/", headers: [("x", "a\r\nInjected: 1")]), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "GET", authority: "", path: "/"), endStream: true) == nil)
        #expect(encode(H2RequestHead(method: "GET", authority: "", path: "/", headers: [("host", "h")]), endStream: true)?.0.contains("host: h\r\n") == true)
    }

    @Test func connectionSpecificFieldsDropped() throws {
        let (text, _) = try #require(encode(H2RequestHead(method: "GET", authority: "a", path: "/", headers: [
            ("connection", "close"), ("keep-alive", "1"), ("proxy-connection", "x"), ("upgrade", "h2c"),
            ("transfer-encoding", "chunked"), ("x-ok", "1")]), endStream: true))
        #expect(text == "GET / HTTP/1.1\r\nhost: a\r\nx-ok: 1\r\n\r\n")
    }
}

/// Runs `HTTP1ToH2Request` over `input` in `chunk`-sized pieces.
func translateRequest(_ input: [UInt8], chunk: Int) -> (head: H2RequestHead?, endStream: Bool, body: [UInt8], trailers: [String], ended: Bool, error: Bool) {
    var t = HTTP1ToH2Request()
    var head: H2RequestHead?
    var endStream = false
    var body: [UInt8] = []
    var trailers: [String] = []
    var pending: [UInt8] = []
    var off = 0
    while off < input.count {
        let end = min(input.count, off + chunk)
        pending += input[off..<end]
        off = end
        var used = 0
        loop: while true {
            let (s, n) = pending.withUnsafeBytes { t.step(UnsafeRawBufferPointer(rebasing: $0[used...])) }
            switch s {
            case .head:
                head = t.head
                endStream = t.endStream
            case .body(let r): body += pending[(used + r.lowerBound)..<(used + r.upperBound)]
            case .trailers: trailers = t.trailers.pairs.map { "\($0.0): \($0.1)" }
            case .end: return (head, endStream, body, trailers, true, false)
            case .error: return (head, endStream, body, trailers, false, true)
            case .needMore:
                used += n
                break loop
            }
            used += n
        }
        pending.removeFirst(used)
    }
    return (head, endStream, body, trailers, false, false)
}

@Suite struct ClientRoleTranslatorTests {
    @Test(arguments: [1, 4, 4096])
    func requestRoundTripThroughHTTP1(chunk: Int) throws {
        // h2 request → HTTP/1.1 bytes (frontend) → h2 request (towards an h2 target).
        let original = H2RequestHead(method: "POST", scheme: "http", authority: "api.example", path: "/pkg.Svc/Call",
                                     headers: [("content-type", "application/grpc"), ("te", "trailers"), ("x-id", "7")])
        var enc = H2ToHTTP1Request()
        var wire: [UInt8] = []
        guard case .success = enc.encodeHead(original, endStream: false, into: &wire) else {
            Issue.record("encode failed")
            return
        }
        enc.encodeBody(bytes("abc"), into: &wire)
        enc.encodeBody(bytes("defg"), into: &wire)
        enc.encodeEnd(trailers: H2Headers([("x-trailer", "t")]), into: &wire)
        let r = translateRequest(wire, chunk: chunk)
        let head = try #require(r.head)
        #expect(!r.error && r.ended && !r.endStream)
        #expect(head.methodString == "POST" && head.pathString == "/pkg.Svc/Call" && head.authorityString == "api.example")
        #expect(head.headers.pairs.map { "\($0.0): \($0.1)" } == ["content-type: application/grpc", "te: trailers", "x-id: 7"])
        #expect(r.body == bytes("abcdefg"))
        #expect(r.trailers == ["x-trailer: t"])
    }

    @Test func requestWithoutBodyEndsAtHead() throws {
        let r = translateRequest(bytes("GET http://h.example/p?q=1 HTTP/1.1\r\nHost: h.example\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nTE: gzip\r\n\r\n"), chunk: 2)
        let head = try #require(r.head)
        #expect(r.endStream && r.ended)
        #expect(head.pathString == "/p?q=1")
        #expect(head.headers.isEmpty)
    }

    @Test func requestErrors() {
        #expect(translateRequest(bytes("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), chunk: 100).error)
        #expect(translateRequest(bytes("GET / HTTP/1.1\r\n\r\n"), chunk: 100).error)
        #expect(translateRequest(bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n"), chunk: 1).error)
    }

    @Test(arguments: [1, 3, 4096])
    func responseRoundTripThroughHTTP1(chunk: Int) {
        // h2 response from a target → HTTP/1.1 bytes → h2 response to the client.
        var enc = H2ToHTTP1Response(requestMethod: .post)
        var wire: [UInt8] = []
        #expect(enc.encodeHead(status: 200, headers: H2Headers([("content-type", "application/grpc"), ("connection", "x")]),
                               endStream: false, into: &wire))
        enc.encodeBody(bytes("payload"), into: &wire)
        enc.encodeEnd(trailers: H2Headers([("grpc-status", "14"), ("grpc-message", "unavailable")]), into: &wire)
        let r = translateResponse(wire, chunk: chunk, method: .post)
        #expect(!r.error && r.ended && r.status == 200)
        #expect(r.head == ["content-type: application/grpc"])
        #expect(r.body == bytes("payload"))
        #expect(r.trailers == ["grpc-status: 14", "grpc-message: unavailable"])
    }

    @Test func responseFraming() {
        var out: [UInt8] = []
        var enc = H2ToHTTP1Response(requestMethod: .get)
        #expect(enc.encodeHead(status: 200, headers: H2Headers([("content-length", "4")]), endStream: false, into: &out))
        enc.encodeBody(bytes("abcd"), into: &out)
        enc.encodeEnd(trailers: nil, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nabcd")
        out = []
        #expect(enc.encodeHead(status: 404, headers: H2Headers(), endStream: true, into: &out))
        #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        out = []
        #expect(enc.encodeHead(status: 304, headers: H2Headers(), endStream: true, into: &out))
        #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 304 Not Modified\r\n\r\n")
        #expect(!enc.encodeHead(status: 99, headers: H2Headers(), endStream: true, into: &out))
        #expect(!enc.encodeHead(status: 200, headers: H2Headers([("x", "a\nb")]), endStream: true, into: &out))
        // The bytes it writes parse with the data plane's response parser.
        out = []
        #expect(enc.encodeHead(status: 200, headers: H2Headers([("x-a", "1")]), endStream: false, into: &out))
        var p = HTTPResponseParser()
        #expect(out.withUnsafeBytes { p.parse($0, requestMethod: .get) } == .complete)
        #expect(p.head.framing == .chunked)
    }
}
