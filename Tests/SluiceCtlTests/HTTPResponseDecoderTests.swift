import SluiceHTTP
import Testing

@testable import sluicectl

@Suite struct HTTPResponseDecoderTests {
    /// Feeds `text` one byte at a time, then the end of the connection; returns status and body.
    func decodeByteByByte(_ text: String) throws -> (status: Int, body: String, ended: Bool) {
        var decoder = HTTPResponseDecoder()
        var status = 0
        var body: [UInt8] = []
        var ended = false
        func apply(_ events: [HTTPResponseDecoder.Event]) {
            for event in events {
                switch event {
                case .head(let head): status = head.status
                case .body(let bytes): body += bytes
                case .end: ended = true
                }
            }
        }
        for byte in text.utf8 { apply(try decoder.feed([byte])) }
        if !decoder.isComplete { apply(try decoder.finish()) }
        return (status, String(decoding: body, as: UTF8.self), ended)
    }

    @Test func contentLength() throws {
        let r = try decodeByteByByte("HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello")
        #expect(r.status == 201 && r.body == "hello" && r.ended)
    }

    @Test func headersAreLowercasedAndTrimmed() throws {
        var decoder = HTTPResponseDecoder()
        let events = try decoder.feed(Array("HTTP/1.1 200\r\nX-Thing:   a b  \r\nContent-Length: 0\r\n\r\n".utf8))
        guard case .head(let head) = events.first else { Issue.record("no head"); return }
        #expect(head.status == 200)
        #expect(head.value("x-thing") == "a b")
        #expect(events.last == .end)
        #expect(decoder.isComplete)
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let r = try decodeByteByByte(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\nA\r\npedia in\r\n\r\n0\r\nT: v\r\n\r\n")
        #expect(r.status == 200 && r.body == "Wikipedia in\r\n" && r.ended)
    }

    @Test func untilClose() throws {
        let r = try decodeByteByByte("HTTP/1.1 200 OK\r\n\r\nall of it")
        #expect(r.body == "all of it" && r.ended)
    }

    @Test func interimAnswerIsSkipped() throws {
        let r = try decodeByteByByte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        #expect(r.status == 204 && r.body.isEmpty && r.ended)
    }

    @Test func truncatedChunkedIsAnError() {
        #expect(throws: HTTPResponseDecoder.DecodeError.truncated) {
            _ = try decodeByteByByte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
        }
    }

    @Test func malformedInput() {
        for text in [
            "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        ] {
            var decoder = HTTPResponseDecoder()
            #expect(throws: HTTPResponseDecoder.DecodeError.self, "\(text.debugDescription)") {
                _ = try decoder.feed(Array(text.utf8))
            }
        }
    }

    /// Chunk data is handed to `ChunkedBodyScanner` in growing runs: a large chunk, a small one and
    /// a streamed event line, fed in uneven pieces, come out whole and in order.
    @Test(arguments: [1, 7, 4096, 100_000])
    func chunkedInPiecesOfAnySize(_ piece: Int) throws {
        let big = String(repeating: "0123456789abcdef", count: 5000)  // 80 000 bytes
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(big.utf8.count, radix: 16) + "\r\n" + big + "\r\n3;ext\r\nxyz\r\n"
            + "b\r\n{\"a\":\"b\"}\r\n\r\n0\r\n\r\nleftover"
        let bytes = Array(text.utf8)
        var decoder = HTTPResponseDecoder()
        var body: [UInt8] = []
        var ends = 0
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + piece)
            for event in try decoder.feed(bytes[i..<end]) {
                if case .body(let b) = event { body += b }
                if case .end = event { ends += 1 }
            }
            i = end
        }
        #expect(decoder.isComplete && ends == 1)
        #expect(String(decoding: body, as: UTF8.self) == big + "xyz" + "{\"a\":\"b\"}\r\n")
    }

    @Test func oversizedHead() {
        var decoder = HTTPResponseDecoder()
        let text = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: HTTPResponseDecoder.maxHeadBytes)
        #expect(throws: HTTPResponseDecoder.DecodeError.self) { _ = try decoder.feed(Array(text.utf8)) }
    }
}
