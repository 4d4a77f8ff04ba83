import Testing
@testable import SluiceHTTP

/// Bytes of a string literal; `\u{..}` escapes below 0x80 give single bytes.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Parses `raw` in one call.
func parseRequest(_ raw: [UInt8], limits: HTTPLimits = HTTPLimits()) -> (HTTPParseResult, HTTPRequestParser) {
    var p = HTTPRequestParser(limits: limits)
    let r = raw.withUnsafeBytes { p.parse($0) }
    return (r, p)
}

/// Parses `raw` feeding it one more byte per call (the buffer always starts at the head).
func parseRequestByteByByte(_ raw: [UInt8], limits: HTTPLimits = HTTPLimits()) -> (HTTPParseResult, HTTPRequestParser) {
    var p = HTTPRequestParser(limits: limits)
    var r = HTTPParseResult.needMore
    for n in 0...raw.count {
        r = raw.withUnsafeBytes { p.parse(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        if r != .needMore { break }
    }
    return (r, p)
}

/// The text of a range in `raw`.
func text(_ raw: [UInt8], _ r: ByteRange) -> String {
    String(decoding: raw[Int(r.start)..<r.end], as: UTF8.self)
}

/// Everything a head says, as one comparable string (for split equivalence).
func summary(_ raw: [UInt8], _ h: HTTPRequestHead) -> String {
    var s = "\(text(raw, h.method))|\(h.methodKind)|\(text(raw, h.target))|\(text(raw, h.path))|\(text(raw, h.query))"
    s += "|1.\(h.versionMinor)|host=\(h.host.map { text(raw, $0) } ?? "-")|\(h.framing)|ka=\(h.keepAlive)"
    s += "|exp=\(h.expectContinue)|ws=\(h.upgradeWebSocket)|\(h.verdict.klass)/\(h.verdict.reason)|len=\(h.headLength)"
    s += "|reject=\(h.rejectStatus)"
    for x in h.headers { s += "|\(text(raw, x.name))=\(text(raw, x.value))/\(x.kind)" }
    return s
}

/// Parses a response in one call.
func parseResponse(_ raw: [UInt8], method: HTTPMethod = .get) -> (HTTPParseResult, HTTPResponseParser) {
    var p = HTTPResponseParser(limits: HTTPLimits())
    let r = raw.withUnsafeBytes { p.parse($0, requestMethod: method) }
    return (r, p)
}
