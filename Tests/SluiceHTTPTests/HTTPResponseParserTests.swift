import Testing
@testable import SluiceHTTP

@Suite("HTTPResponseParser")
struct HTTPResponseParserTests {
    @Test func contentLength() {
        let raw = bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")
        let (r, p) = parseResponse(raw)
        #expect(r == .complete)
        let h = p.head
        #expect(h.status == 200 && h.versionMinor == 1 && text(raw, h.reason) == "OK")
        #expect(h.framing == .contentLength(5) && h.keepAlive && h.headLength == raw.count - 5)
        #expect(!h.isInformational && !h.isUpgrade && h.headers.count == 2)
    }

    @Test func chunkedWinsOverContentLength() {
        let (r, p) = parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(r == .complete && p.head.framing == .chunked && p.head.keepAlive)
    }

    @Test func closeDelimited() {
        let (_, p) = parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"))
        #expect(p.head.framing == .untilClose && !p.head.keepAlive)
        let (_, q) = parseResponse(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"))
        #expect(q.head.framing == .untilClose && !q.head.keepAlive)
        let (_, s) = parseResponse(bytes("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        #expect(s.head.framing == .contentLength(2) && !s.head.keepAlive && s.head.versionMinor == 0)
        let (_, t) = parseResponse(bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"))
        #expect(t.head.keepAlive)
    }

    @Test func noBodyStatusesAndHead() {
        for (status, method) in [(100, HTTPMethod.get), (103, .get), (204, .get), (304, .get), (200, .head), (200, .connect)] {
            let (r, p) = parseResponse(bytes("HTTP/1.1 \(status) X\r\nContent-Length: 10\r\n\r\n"), method: method)
            #expect(r == .complete)
            #expect(p.head.framing == BodyFraming.none, "\(status) \(method)")
        }
        let (_, info) = parseResponse(bytes("HTTP/1.1 100 Continue\r\n\r\n"))
        #expect(info.head.isInformational && !info.head.isUpgrade)
    }

    @Test func switchingProtocols() {
        let (r, p) = parseResponse(bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
        #expect(r == .complete && p.head.isUpgrade && !p.head.isInformational && p.head.framing == .none)
    }

    @Test func statusWithoutReason() {
        let raw = bytes("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
        let (r, p) = parseResponse(raw)
        #expect(r == .complete && p.head.status == 404 && p.head.reason.isEmpty && p.head.framing == .none)
    }

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: b\u{0}\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
        "garbage\r\n\r\n",
    ])
    func garbledResponsesAre502(_ s: String) {
        #expect(parseResponse(bytes(s)).0 == .error(.badResponse))
    }

    @Test func splitAtEveryBoundary() {
        let raw = bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n 2\r\n\r\nhello")
        let (_, whole) = parseResponse(raw)
        for k in 0...raw.count {
            var p = HTTPResponseParser()
            var r = raw.withUnsafeBytes { p.parse(UnsafeRawBufferPointer(rebasing: $0[..<k]), requestMethod: .get) }
            if r == .needMore { r = raw.withUnsafeBytes { p.parse($0, requestMethod: .get) } }
            #expect(r == .complete)
            #expect(p.head.headLength == whole.head.headLength && p.head.framing == whole.head.framing)
            #expect(p.head.headers.count == 2 && text(raw, p.head.headers[1].value) == "1\r\n 2")
        }
    }

    @Test func cannedResponsesParseBack() {
        for status in CannedResponse.statuses {
            for close in [false, true] {
                let raw = CannedResponse.bytes(status: status, close: close)
                let (r, p) = parseResponse(raw)
                #expect(r == .complete)
                #expect(p.head.status == status && p.head.keepAlive == !close)
                guard case .contentLength(let n) = p.head.framing else {
                    Issue.record("no content-length for \(status)")
                    continue
                }
                #expect(p.head.headLength + Int(n) == raw.count)
                let hasType = p.head.headers.contains { text(raw, $0.name) == "content-type" && text(raw, $0.value) == "text/plain" }
                #expect(hasType)
            }
        }
    }

    @Test func canned503IsExactly() {
        let s = String(decoding: CannedResponse.bytes(status: 503, close: true), as: UTF8.self)
        #expect(s == "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\nconnection: close\r\n\r\nservice unavailable\n")
        let k = String(decoding: CannedResponse.bytes(status: 404, close: false), as: UTF8.self)
        #expect(k == "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\nnot found\n")
    }
}
