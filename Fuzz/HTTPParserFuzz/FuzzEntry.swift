// libFuzzer entry point over HTTPRequestParser, ChunkedBodyScanner, HTTPResponseParser and
// HTTPWriter. Compiled together with Sources/SluiceHTTP/*.swift into one module by
// `make fuzz` (swiftc -sanitize=fuzzer,address), so no SwiftPM product is needed.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * parse never crashes, and every range it reports lies inside the head;
// * parsing the same bytes in two pieces (split at a byte chosen by the input) gives the same
//   result as parsing them at once;
// * the chunked scanner, fed the rest of the input whole and split, agrees;
// * the writer never writes past its buffer and never emits CR/LF inside a header line;
// * what the writer forwards parses back with the same framing and no worse a class.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    guard size > 0 else { return 0 }
    let split = Int(all[0]) % size
    let input = UnsafeRawBufferPointer(rebasing: all[1...])
    let limits = HTTPLimits(maxRequestLine: 512, maxHeadBytes: 2048, maxHeaders: 16)

    var whole = HTTPRequestParser(limits: limits)
    let r1 = whole.parse(input)
    var pieces = HTTPRequestParser(limits: limits)
    let cut = min(split, input.count)
    var r2 = pieces.parse(UnsafeRawBufferPointer(rebasing: input[..<cut]))
    if r2 == .needMore { r2 = pieces.parse(input) }
    precondition(r1 == r2, "split parse differs")

    var bodyStart = 0
    if r1 == .complete {
        let h = whole.head
        let h2 = pieces.head
        precondition(h.verdict == h2.verdict && h.framing == h2.framing && h.headLength == h2.headLength)
        precondition(h.headers.count == h2.headers.count && h.headers.count <= limits.maxHeaders)
        precondition(h.headLength <= input.count && h.headLength <= limits.maxHeadBytes)
        for x in h.headers {
            precondition(x.name.start >= 0 && x.name.end <= h.headLength)
            precondition(x.value.start >= 0 && x.value.end <= h.headLength)
        }
        for r in [h.method, h.target, h.path, h.query] { precondition(r.start >= 0 && r.end <= h.headLength) }
        if let host = h.host { precondition(host.end <= h.headLength) }
        bodyStart = h.headLength

        // The writer: bounded, and no line breaks inside lines.
        var out = [UInt8](repeating: 0, count: 4096)
        let written = out.withUnsafeMutableBytes { o in
            HTTPWriter.writeUpstreamHead(
                h, source: input, into: o,
                options: .init(xff: .append, clientAddress: .init("192.0.2.1"), port: 80, traceID: 42))
        }
        if let n = written {
            precondition(n <= out.count)
            // Every LF is preceded by CR and every CR followed by LF.
            for i in 0..<n {
                if out[i] == 0x0A { precondition(i > 0 && out[i - 1] == 0x0D, "bare LF written") }
                if out[i] == 0x0D { precondition(i + 1 < n && out[i + 1] == 0x0A, "bare CR written") }
            }
            // What we write must parse back as one compliant-or-acceptable head.
            var back = HTTPRequestParser()
            let rb = out.withUnsafeBytes { back.parse(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            precondition(rb == .complete, "written head does not parse")
            // Forwarding never makes a request look worse, and a strict parser (ours) frames the
            // forwarded head exactly as we framed the received one (no desync through us).
            precondition(back.head.verdict.klass <= h.verdict.klass, "writer made the request worse")
            precondition(back.head.framing == h.framing, "forwarded head is framed differently")
        }
    }

    // Chunked scanner over the rest, whole versus split.
    let rest = UnsafeRawBufferPointer(rebasing: input[bodyStart...])
    var a = ChunkedBodyScanner()
    let s1 = a.scan(rest)
    var b = ChunkedBodyScanner()
    let c2 = min(split, rest.count)
    var s2 = b.scan(UnsafeRawBufferPointer(rebasing: rest[..<c2]))
    switch s2 {
    case .consumed(let n):
        precondition(n == c2)
        switch b.scan(UnsafeRawBufferPointer(rebasing: rest[c2...])) {
        case .consumed(let m): s2 = .consumed(n + m)
        case .finished(let m): s2 = .finished(n + m)
        case .error: s2 = .error
        }
    default:
        break
    }
    precondition(s1 == s2, "split chunked scan differs")
    if case .finished(let n) = s1 { precondition(n <= rest.count) }

    // Response parser: must not crash.
    var resp = HTTPResponseParser(limits: limits)
    if resp.parse(input, requestMethod: .get) == .complete {
        precondition(resp.head.headLength <= input.count)
        var out = [UInt8](repeating: 0, count: 4096)
        _ = out.withUnsafeMutableBytes { HTTPWriter.writeDownstreamHead(resp.head, source: input, into: $0, close: true) }
    }
    return 0
}
