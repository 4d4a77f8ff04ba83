import Testing
@testable import SluiceHTTP

/// Scans `body` in one call.
private func scanAll(_ body: [UInt8]) -> ChunkedScan {
    var s = ChunkedBodyScanner()
    return body.withUnsafeBytes { s.scan($0) }
}

/// Scans `body` in pieces cut at `cuts`, adding up what was consumed.
private func scanPieces(_ body: [UInt8], _ cuts: [Int]) -> ChunkedScan {
    var s = ChunkedBodyScanner()
    var offset = 0
    for end in cuts + [body.count] where end >= offset {
        let r = body.withUnsafeBytes { s.scan(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
        switch r {
        case .consumed(let n):
            #expect(n == end - offset)
            offset = end
        case .finished(let n): return .finished(offset + n)
        case .error: return .error
        }
    }
    return .consumed(offset)
}

@Suite("ChunkedBodyScanner")
struct ChunkedBodyScannerTests {
    static let valid: [String] = [
        "0\r\n\r\n",
        "5\r\nhello\r\n0\r\n\r\n",
        "5;name=value\r\nhello\r\n0\r\n\r\n",
        "5 ; a=b;c\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n",
        "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n",
        "00000f\r\n0123456789abcde\r\n000\r\n\r\n",
    ]

    @Test(arguments: valid)
    func findsTheEnd(_ s: String) {
        let body = bytes(s)
        let next = bytes("GET /next HTTP/1.1\r\n")
        #expect(scanAll(body) == .finished(body.count))
        #expect(scanAll(body + next) == .finished(body.count))
        // Split at every boundary, and one byte at a time.
        for k in 0...body.count { #expect(scanPieces(body + next, [k]) == .finished(body.count), "split at \(k)") }
        #expect(scanPieces(body + next, Array(0...body.count)) == .finished(body.count))
    }

    @Test func countsDataBytes() {
        var s = ChunkedBodyScanner()
        let body = bytes(Self.valid[3])
        _ = body.withUnsafeBytes { s.scan($0) }
        #expect(s.dataBytes == 15)
        s.reset()
        #expect(s.dataBytes == 0)
        #expect(body.withUnsafeBytes { s.scan($0) } == .finished(body.count))
    }

    @Test func incompleteBodyIsConsumed() {
        #expect(scanAll(bytes("5\r\nhel")) == .consumed(6))
        #expect(scanAll(bytes("5\r\nhello\r\n0\r\n")) == .consumed(13))
        #expect(scanAll(bytes("0\r\nTrailer: x\r\n")) == .consumed(15))
    }

    @Test(arguments: [
        "",  // (placeholder so every argument below is an invalid body)
        "x\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\rhello\r\n0\r\n\r\n",
        "1000000000000000\r\n",
        "ffffffffffffffffff\r\n",
        "5;a\u{0}b\r\nhello\r\n0\r\n\r\n",
        "0\r\nTrailer: a\u{0}b\r\n\r\n",
        "0\r\n\n",
        "5 x\r\nhello\r\n0\r\n\r\n",
    ])
    func invalid(_ s: String) {
        if s.isEmpty {
            #expect(scanAll([]) == .consumed(0))
            return
        }
        #expect(scanAll(bytes(s)) == .error)
        #expect(scanPieces(bytes(s), Array(0...s.utf8.count)) == .error)
    }

    @Test func fifteenHexDigitsIsTheLimit() {
        #expect(scanAll(bytes("fffffffffffffff\r\n")) == .consumed(17))
        #expect(scanAll(bytes("0000000000000000\r\n")) == .error)
    }

    @Test func oversizedExtensionsAndTrailersAreErrors() {
        let ext = "5;" + String(repeating: "a", count: ChunkedBodyScanner.maxSizeLine) + "\r\n"
        #expect(scanAll(bytes(ext)) == .error)
        let trailer = "0\r\nX: " + String(repeating: "a", count: ChunkedBodyScanner.maxTrailerBytes) + "\r\n\r\n"
        #expect(scanAll(bytes(trailer)) == .error)
    }

    @Test func stickyAfterFinishAndError() {
        var s = ChunkedBodyScanner()
        let b = bytes("0\r\n\r\n")
        #expect(b.withUnsafeBytes { s.scan($0) } == .finished(5))
        #expect(b.withUnsafeBytes { s.scan($0) } == .finished(0))
        var e = ChunkedBodyScanner()
        #expect(bytes("z").withUnsafeBytes { e.scan($0) } == .error)
        #expect(b.withUnsafeBytes { e.scan($0) } == .error)
    }
}
