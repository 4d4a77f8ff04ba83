import Testing
@testable import SluiceHTTP

/// One raw request and the class/reason Sluice must give it (after ALB's table,
/// `docs/README.md` of aws/http-desync-guardian; deviations are noted per case).
struct DesyncCase: CustomTestStringConvertible, Sendable {
    var name: String
    var raw: [UInt8]
    var klass: DesyncClass
    var reason: DesyncReason
    /// nil: not checked.
    var framing: BodyFraming?
    /// Set when parse must fail instead (no framing can be made out).
    var errorStatus: Int?
    var testDescription: String { name }

    init(_ name: String, _ raw: String, _ klass: DesyncClass, _ reason: DesyncReason, framing: BodyFraming? = nil, error: Int? = nil) {
        self.name = name
        self.raw = Array(raw.utf8)
        self.klass = klass
        self.reason = reason
        self.framing = framing
        self.errorStatus = error
    }

    init(_ name: String, bytes: [UInt8], _ klass: DesyncClass, _ reason: DesyncReason, framing: BodyFraming? = nil) {
        self.name = name
        self.raw = bytes
        self.klass = klass
        self.reason = reason
        self.framing = framing
        self.errorStatus = nil
    }
}

private let post = "POST /upload HTTP/1.1\r\nHost: example.com\r\n"
private let get = "GET /x HTTP/1.1\r\nHost: example.com\r\n"

let desyncCases: [DesyncCase] = [
    // Compliant baselines.
    .init("plain GET", get + "\r\n", .compliant, .none, framing: BodyFraming.none),
    .init("POST with Content-Length", post + "Content-Length: 5\r\n\r\n", .compliant, .none, framing: .contentLength(5)),
    .init("POST chunked", post + "Transfer-Encoding: chunked\r\n\r\n", .compliant, .none, framing: .chunked),
    .init("TE with tab OWS", post + "Transfer-Encoding:\tchunked\t\r\n\r\n", .compliant, .none, framing: .chunked),
    .init("TE gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n", .compliant, .none, framing: .chunked),
    .init("TE Chunked in capitals", post + "Transfer-Encoding: CHUNKED\r\n\r\n", .compliant, .none, framing: .chunked),
    .init("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", .compliant, .none),
    .init("absolute-form", "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n", .compliant, .none),
    .init("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", .compliant, .none),

    // CL.TE / TE.CL.
    .init("CL.TE", post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", .ambiguous, .bothTeClPresent, framing: .chunked),
    .init("TE.CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", .ambiguous, .bothTeClPresent, framing: .chunked),
    .init("TE gzip + CL", post + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n", .severe, .badTransferEncoding, framing: .chunked),

    // TE.TE obfuscations.
    .init("TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n", .severe, .badTransferEncoding, framing: .chunked),
    .init("TE space before colon", post + "Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n", .severe, .badHeader, framing: .chunked),
    .init("TE tab before colon", post + "Transfer-Encoding\t: chunked\r\n\r\n", .severe, .badHeader, framing: .chunked),
    .init("TE chunked, identity", post + "Transfer-Encoding: chunked, identity\r\n\r\n", .severe, .badTransferEncoding, framing: .chunked),
    .init("TE chunked, gzip (not final)", post + "Transfer-Encoding: chunked, gzip\r\n\r\n", .severe, .badTransferEncoding, framing: .chunked),
    .init("TE vertical tab", post + "Transfer-Encoding:\u{0B}chunked\r\n\r\n", .severe, .badTransferEncoding, framing: .chunked),
    .init("TE with parameters on chunked", post + "Transfer-Encoding: chunked;x=1\r\n\r\n", .severe, .badTransferEncoding),
    .init("TE empty value", post + "Transfer-Encoding: \r\nContent-Length: 3\r\n\r\n", .severe, .badTransferEncoding, framing: .chunked),
    .init("duplicate TE chunked", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .severe, .multipleTransferEncodingChunked),
    .init("TE chunked, chunked", post + "Transfer-Encoding: chunked, chunked\r\n\r\n", .severe, .multipleTransferEncodingChunked),
    .init("TE chunked then TE x", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", .severe, .badTransferEncoding),
    .init("bare LF before TE", post + "X-A: 1\nTransfer-Encoding: chunked\r\n\r\n", .severe, .badHeader, framing: .chunked),
    .init("bare CR before TE", post + "X-A: 1\rTransfer-Encoding: chunked\r\n\r\n", .severe, .badHeader, framing: BodyFraming.none),
    .init("all lines bare LF", "GET / HTTP/1.1\nHost: a\n\n", .severe, .badHeader),
    .init("leading space on first header", "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n", .severe, .badHeader),
    .init("obs-fold of TE", post + "Transfer-Encoding:\r\n chunked\r\n\r\n", .severe, .badHeader),
    .init("obs-fold of CL", post + "Content-Length: 1\r\n 2\r\n\r\n", .severe, .badContentLength, error: 400),
    .init("obs-fold hiding TE", post + "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", .ambiguous, .suspiciousHeader, framing: BodyFraming.none),
    .init("obs-fold of another header", get + "X-A: 1\r\n\t2\r\n\r\n", .ambiguous, .multilineHeader),
    .init("Transfer_Encoding", post + "Transfer_Encoding: chunked\r\n\r\n", .ambiguous, .suspiciousHeader, framing: BodyFraming.none),
    .init("Content_Length", post + "Content_Length: 5\r\n\r\n", .ambiguous, .suspiciousHeader),
    .init("Transfer- Encoding", post + "Transfer- Encoding: chunked\r\n\r\n", .ambiguous, .suspiciousHeader),
    .init("\\x01Transfer-Encoding", post + "\u{01}Transfer-Encoding: chunked\r\n\r\n", .ambiguous, .suspiciousHeader),
    .init("TE without colon", post + "Transfer-Encoding chunked\r\n\r\n", .ambiguous, .suspiciousHeader),
    .init("Tranſfer-Encoding (long s)", post + "Tranſfer-Encoding: chunked\r\n\r\n", .ambiguous, .suspiciousHeader),

    // Header characters.
    .init("NUL in value", get + "X-A: a\u{0}b\r\n\r\n", .severe, .badHeader),
    .init("NUL in name", get + "X\u{0}A: a\r\n\r\n", .severe, .badHeader),
    .init("CTL in value", get + "X-A: a\u{01}b\r\n\r\n", .acceptable, .nonCompliantHeader),
    .init("obs-text in value", get + "X-A: caf\u{E9}\r\n\r\n", .acceptable, .nonCompliantHeader),
    .init("non-token name", get + "X(A): 1\r\n\r\n", .acceptable, .nonCompliantHeader),
    .init("empty header name", get + ": x\r\n\r\n", .ambiguous, .emptyHeader),
    .init("line without colon", get + "Foo\r\n\r\n", .ambiguous, .missingHeaderColon),
    .init("space before colon (other header)", get + "X-A : 1\r\n\r\n", .severe, .badHeader),

    // Content-Length.
    .init("CL +5", post + "Content-Length: +5\r\n\r\n", .severe, .badContentLength, error: 400),
    .init("CL 0x10", post + "Content-Length: 0x10\r\n\r\n", .severe, .badContentLength, error: 400),
    .init("CL -1", post + "Content-Length: -1\r\n\r\n", .severe, .badContentLength, error: 400),
    .init("CL huge", post + "Content-Length: 99999999999999999999\r\n\r\n", .severe, .badContentLength, error: 400),
    .init("CL empty", post + "Content-Length: \r\n\r\n", .severe, .badContentLength, error: 400),
    .init("CL 5 5 (space)", post + "Content-Length: 5 5\r\n\r\n", .severe, .badContentLength, error: 400),
    .init("CL list 5, 5", post + "Content-Length: 5, 5\r\n\r\n", .ambiguous, .duplicateContentLength, framing: .contentLength(5)),
    .init("CL list 5, 6", post + "Content-Length: 5, 6\r\n\r\n", .severe, .multipleContentLength, framing: .contentLength(5)),
    .init("two CL equal", post + "Content-Length: 7\r\nContent-Length: 7\r\n\r\n", .ambiguous, .duplicateContentLength, framing: .contentLength(7)),
    .init("two CL differ", post + "Content-Length: 7\r\nContent-Length: 8\r\n\r\n", .severe, .multipleContentLength, framing: .contentLength(7)),
    .init("two CL differ, first 0", post + "Content-Length: 0\r\nContent-Length: 40\r\n\r\n", .severe, .multipleContentLength, framing: BodyFraming.none),
    .init("two CL differ + TE", post + "Content-Length: 7\r\nContent-Length: 8\r\nTransfer-Encoding: chunked\r\n\r\n", .severe, .multipleContentLength, framing: .chunked),
    .init("bad CL + TE", post + "Transfer-Encoding: chunked\r\nContent-Length: 0x5\r\n\r\n", .severe, .badContentLength, framing: .chunked),
    .init("CL 0 on POST", post + "Content-Length: 0\r\n\r\n", .compliant, .none, framing: BodyFraming.none),

    // Method semantics.
    .init("GET CL 0", get + "Content-Length: 0\r\n\r\n", .acceptable, .getHeadZeroContentLength, framing: BodyFraming.none),
    .init("GET CL 5", get + "Content-Length: 5\r\n\r\n", .ambiguous, .undefinedContentLengthSemantics, framing: .contentLength(5)),
    .init("HEAD CL 5", "HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", .ambiguous, .undefinedContentLengthSemantics),
    .init("GET TE", get + "Transfer-Encoding: chunked\r\n\r\n", .ambiguous, .undefinedTransferEncodingSemantics, framing: .chunked),
    .init("HTTP/1.0 TE", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .ambiguous, .undefinedTransferEncodingSemantics, framing: .chunked),

    // Request line.
    .init("space in URI", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", .acceptable, .spaceInUri),
    .init("double space separator", "GET  /a HTTP/1.1\r\nHost: a\r\n\r\n", .acceptable, .spaceInUri),
    .init("NUL in URI", "GET /a\u{0}b HTTP/1.1\r\nHost: a\r\n\r\n", .severe, .badUri),
    .init("CTL in URI", "GET /a\u{01}b HTTP/1.1\r\nHost: a\r\n\r\n", .ambiguous, .ambiguousUri),
    .init("tab in URI", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", .ambiguous, .ambiguousUri),
    .init("obs-text in URI", "GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", .acceptable, .nonCompliantUri),
    .init("asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", .severe, .badUri),
    .init("relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", .severe, .badUri),
    .init("userinfo in absolute-form", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", .severe, .badUri),
    .init("bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .severe, .badMethod),
    .init("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .severe, .badVersion),
    .init("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", .severe, .badVersion),
    .init("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", .acceptable, .nonCompliantVersion),
    .init("CR inside request line", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", .severe, .badUri),

    // Host.
    .init("two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .severe, .multipleHost),
    .init("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", .acceptable, .missingHost),
]

@Suite("Desync classification")
struct HTTPDesyncTests {
    @Test("table has at least 40 requests")
    func tableSize() {
        #expect(desyncCases.count >= 40)
    }

    @Test(arguments: desyncCases)
    func classify(_ c: DesyncCase) {
        let (r, p) = parseRequest(c.raw)
        if let status = c.errorStatus {
            #expect(r == .error(HTTPParseError(status: status, reason: c.reason)))
            #expect(p.head.verdict.klass == .severe)
            return
        }
        #expect(r == .complete)
        #expect(p.head.verdict.klass == c.klass, "reason was \(p.head.verdict.reason)")
        #expect(p.head.verdict.reason == c.reason, "class was \(p.head.verdict.klass)")
        if let f = c.framing { #expect(p.head.framing == f) }
        #expect(p.head.headLength == c.raw.count)
    }

    /// Every case gives the same head when fed one byte at a time.
    @Test(arguments: desyncCases)
    func byteByByte(_ c: DesyncCase) {
        let (r1, p1) = parseRequest(c.raw)
        let (r2, p2) = parseRequestByteByByte(c.raw)
        #expect(r1 == r2)
        if r1 == .complete { #expect(summary(c.raw, p1.head) == summary(c.raw, p2.head)) }
    }

    @Test func unknownCodingHints501() {
        let (r, p) = parseRequest(bytes(post + "Transfer-Encoding: xchunked\r\n\r\n"))
        #expect(r == .complete)
        #expect(p.head.rejectStatus == 501)
        let (_, q) = parseRequest(bytes(post + "Transfer-Encoding: chunked, gzip\r\n\r\n"))
        #expect(q.head.rejectStatus == 400)
    }

    @Test func reasonCodesUseALBSpelling() {
        #expect(DesyncReason.bothTeClPresent.code == "BothTeClPresent")
        #expect(DesyncReason.getHeadZeroContentLength.code == "GetHeadZeroContentLength")
        #expect(DesyncReason.undefinedTransferEncodingSemantics.code == "UndefinedTransferEncodingSemantics")
        #expect(DesyncClass.compliant < DesyncClass.acceptable && DesyncClass.ambiguous < DesyncClass.severe)
    }
}
