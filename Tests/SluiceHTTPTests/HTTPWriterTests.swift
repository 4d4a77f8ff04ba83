import Testing
@testable import SluiceHTTP

/// Parses `request` and writes it upstream with `options`; returns the text written.
private func upstream(_ request: String, _ options: HTTPWriter.ForwardOptions, capacity: Int = 4096) -> String? {
    let raw = bytes(request)
    let (r, p) = parseRequest(raw)
    #expect(r == .complete)
    var out = [UInt8](repeating: 0, count: capacity)
    let n = raw.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { HTTPWriter.writeUpstreamHead(p.head, source: src, into: $0, options: options) }
    }
    return n.map { String(decoding: out[..<$0], as: UTF8.self) }
}

private func downstream(_ response: String, close: Bool, clientVersionMinor: UInt8 = 1) -> String? {
    let raw = bytes(response)
    let (r, p) = parseResponse(raw)
    #expect(r == .complete)
    var out = [UInt8](repeating: 0, count: 4096)
    let n = raw.withUnsafeBytes { src in
        out.withUnsafeMutableBytes {
            HTTPWriter.writeDownstreamHead(p.head, source: src, into: $0, close: close, clientVersionMinor: clientVersionMinor)
        }
    }
    return n.map { String(decoding: out[..<$0], as: UTF8.self) }
}

private func options(_ xff: HTTPWriter.XFFMode, keepAlive: Bool = true) -> HTTPWriter.ForwardOptions {
    .init(xff: xff, clientAddress: .init("192.0.2.7"), proto: "http", port: 8080, traceID: 0x00ab_cdef_0123_4567,
          keepAliveToTarget: keepAlive)
}

private let withXFF = "GET /a?b HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n\r\n"
private let tail = "X-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\nx-sluice-trace: 00abcdef01234567\r\n\r\n"

@Suite("HTTPWriter")
struct HTTPWriterTests {
    @Test func xffAppend() {
        #expect(upstream(withXFF, options(.append)) ==
            "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n" + tail)
    }

    @Test func xffAppendWithoutExistingAndJoiningSeveral() {
        #expect(upstream("GET / HTTP/1.1\r\nHost: h\r\n\r\n", options(.append)) ==
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.7\r\n" + tail)
        #expect(upstream("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\n\r\n", options(.append)) ==
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 192.0.2.7\r\n" + tail)
    }

    @Test func xffPreserve() {
        #expect(upstream(withXFF, options(.preserve)) ==
            "GET /a?b HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n" + tail)
    }

    @Test func xffRemove() {
        #expect(upstream(withXFF, options(.remove)) == "GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n" + tail)
    }

    @Test func hopByHopHeadersAndOursReplaced() {
        let req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: timeout=5\r\n"
            + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Private: secret\r\n"
            + "X-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\nX-Keep: 1\r\n\r\n"
        #expect(upstream(req, options(.remove)) == "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: 1\r\n" + tail)
    }

    @Test func traceHeaderOnlyIfAbsent() {
        let req = "GET / HTTP/1.1\r\nHost: h\r\nX-Sluice-Trace: client-chosen\r\n\r\n"
        #expect(upstream(req, options(.remove)) ==
            "GET / HTTP/1.1\r\nHost: h\r\nX-Sluice-Trace: client-chosen\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\r\n")
    }

    @Test func webSocketKeepsUpgrade() {
        let req = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"
        #expect(upstream(req, options(.remove)) ==
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: Upgrade\r\n" + tail)
    }

    @Test func closeToTargetAndHTTP10() {
        #expect(upstream("GET / HTTP/1.1\r\nHost: h\r\n\r\n", options(.remove, keepAlive: false)) ==
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n" + tail)
        // HTTP/1.0 without Host: nothing invented, version kept, keep-alive asked for explicitly.
        #expect(upstream("GET / HTTP/1.0\r\n\r\n", options(.remove)) == "GET / HTTP/1.0\r\nConnection: keep-alive\r\n" + tail)
    }

    @Test func contentLengthNormalisedAndDroppedForChunked() {
        #expect(upstream("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\n", options(.remove)) ==
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n" + tail)
        #expect(upstream("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", options(.remove)) ==
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + tail)
        #expect(upstream("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", options(.remove)) ==
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n" + tail)
    }

    @Test func obsFoldAndOddTargetsAreSanitised() {
        #expect(upstream("GET /a b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", options(.remove)) ==
            "GET /a%20b HTTP/1.1\r\nHost: h\r\nX-A: 1   2\r\n" + tail)
    }

    /// Fuzz finding 1: a header name holding a bare CR was copied verbatim, emitting a bare CR.
    /// Such fields are now classed severe and not kept, so they are never written.
    @Test func fuzzFinding1NameWithBareCR() {
        let raw: [UInt8] = [
            0x47, 0xF5, 0x45, 0x54, 0x20, 0x74, 0x2D, 0x4C, 0x3A, 0x20, 0x33, 0x0D, 0x0A, 0x0D, 0x48, 0x6F, 0x73, 0x74, 0x3A,
            0x20, 0x78, 0x0D, 0x0A, 0x0D, 0x0A,
        ]
        let (r, p) = parseRequest(raw)
        #expect(r == .complete && p.head.verdict.klass == .severe && p.head.headers.isEmpty)
        var out = [UInt8](repeating: 0, count: 1024)
        let n = raw.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { HTTPWriter.writeUpstreamHead(p.head, source: src, into: $0, options: options(.append)) }
        }
        let written = Array(out[..<n!])
        for (i, b) in written.enumerated() where b == 0x0D { #expect(written[i + 1] == 0x0A) }
        #expect(String(decoding: written.prefix(20), as: UTF8.self) == "G_ET t-L: HTTP/1.1\r\n")
    }

    @Test func tooSmallBufferGivesNil() {
        let full = upstream(withXFF, options(.append))!
        #expect(upstream(withXFF, options(.append), capacity: full.utf8.count) == full)
        #expect(upstream(withXFF, options(.append), capacity: full.utf8.count - 1) == nil)
        #expect(upstream(withXFF, options(.append), capacity: 0) == nil)
    }

    @Test func writtenHeadParsesBackCompliant() {
        let out = upstream(withXFF, options(.append))!
        let (r, p) = parseRequest(bytes(out))
        #expect(r == .complete && p.head.verdict == .compliant)
    }

    @Test func downstreamHead() {
        let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: b\r\n\r\n"
        #expect(downstream(resp, close: false) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n")
        #expect(downstream(resp, close: true) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\nConnection: close\r\n\r\n")
        #expect(downstream(resp, close: false, clientVersionMinor: 0) ==
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\nConnection: keep-alive\r\n\r\n")
        #expect(downstream("HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", close: false) ==
            "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n")
    }

    @Test func downstreamKeepsUpgradeHeadersFor101() {
        let resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
        #expect(downstream(resp, close: true) == resp)
    }

    @Test func addressText() {
        let a = HTTPWriter.AddressText("2001:db8::1")
        #expect(a.count == 11)
        #expect(a.withBytes { Array($0) } == bytes("2001:db8::1"))
        let long = HTTPWriter.AddressText(String(repeating: "9", count: 100))
        #expect(long.count == HTTPWriter.AddressText.capacity)
    }
}
