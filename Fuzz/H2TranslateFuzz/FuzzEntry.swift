// libFuzzer entry point over the HTTP/1.1 <-> HTTP/2 translators of SluiceHTTP2 and the gRPC
// health-check codec, on arbitrary bytes: HTTP1ToH2Response and HTTP1ToH2Request stepped over
// the input whole and in input-chosen splits (pipelined messages included, then `endOfInput`);
// H2ToHTTP1Request and H2ToHTTP1Response fed heads, bodies and trailers made of input bytes;
// GRPC.parseHealthCheckResponse on the input. Compiled with Sources/SluiceHTTP2 into one module
// (SluiceHTTP comes from ./prebuild as its own module; the HTTP/1 parsers check the output).
//
// Input: 4 control bytes, then the message bytes.
//   c0  bits 0-2: the request method the response answers; bit 3: h2 field names kept as they
//       are (not lower-cased); bit 4: the h2 request ends with its head; bits 5-7: h2 status pick.
//   c1, c2  chunk sizes of the split run, alternating (0: the rest at once).
//   c3  mixed into the h2 status.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * nothing traps; `step` always makes progress (bounded calls) and reports body ranges inside
//   the bytes it was given and consumed;
// * any split gives the same heads, body bytes, trailers and end/error as the whole input;
// * HTTP/1 -> HTTP/2 heads carry only lower-case, non-connection-specific names and values
//   without CR/LF (what nghttp2 and RFC 9113 §8.2 require); for a request the data plane
//   forwards (not severe, written by HTTPWriter), :method is a token, :path is "/..." (or "*"
//   for OPTIONS) without SP/CTL, and :authority is a plain host[:port];
// * HTTP/2 -> HTTP/1 output that our HTTP/1 parser accepts is framed exactly as the encoder
//   writes the body (no desync), and a chunked body it writes ends exactly where it ends
//   (a strict scanner never sees the body end early);
// * a well-formed health-check message always parses, and to the status it carries.
//
// seeds/crash_path_fragment and seeds/crash_authority_space are regression inputs of two findings
// in HTTP1ToH2Request (":path" "#" from "GET http://x# HTTP/1.1"; ":authority" "n 1" from
// "Host:n 1"); they trap here until HTTP1ToH2Request.buildHead refuses such heads.
import SluiceHTTP

/// A checked property: unlike `precondition` in -O builds, it prints its message, then traps.
@inline(__always) private func require(_ ok: Bool, _ message: @autoclosure () -> String = "") {
    if !ok { fatalError(message()) }
}

private enum TEvent: Equatable {
    case head([UInt8])
    case body([UInt8])
    case trailers([UInt8])
    case end
    case error
    case eof(HTTP1Step?)
}

private func add(_ e: TEvent, to t: inout [TEvent]) {
    if case .body(let b) = e, case .body(let a)? = t.last {
        t[t.count - 1] = .body(a + b)
    } else {
        t.append(e)
    }
}

private func flatten(_ h: H2Headers) -> [UInt8] {
    var out: [UInt8] = []
    for i in h.indices {
        let f = h[i]
        out += f.name
        out.append(0)
        out += f.value
        out.append(0)
    }
    return out
}

/// Steps a translator over `input`, the bytes made available `a`, `b`, `a`, ... at a time
/// (0: all at once), as a caller reading a socket does: it passes the bytes not yet consumed.
private func drive(
    _ input: UnsafeRawBufferPointer, _ a: Int, _ b: Int, maxMessages: Int,
    step: (UnsafeRawBufferPointer) -> (HTTP1Step, consumed: Int),
    head: () -> [UInt8], trailers: () -> [UInt8], next: () -> Void, eof: () -> HTTP1Step?
) -> [TEvent] {
    let n = input.count
    var t: [TEvent] = []
    var off = 0
    var avail = 0
    var k = 0
    func grow() {
        let c = k & 1 == 0 ? a : b
        k += 1
        avail = c == 0 ? n : min(n, avail + c)
    }
    grow()
    var messages = 0
    var calls = 0
    while true {
        calls += 1
        require(calls <= 4 * n + 64, "translator makes no progress")
        let slice = UnsafeRawBufferPointer(rebasing: input[off..<avail])
        let (s, used) = step(slice)
        require(used >= 0 && used <= slice.count, "consumed more than given")
        off += used
        switch s {
        case .needMore:
            if off < avail { continue }  // bytes left over: offer them again
            if avail == n {
                add(.eof(eof()), to: &t)
                return t
            }
            grow()
        case .head:
            add(.head(head()), to: &t)
        case .body(let r):
            require(r.lowerBound >= 0 && r.lowerBound < r.upperBound && r.upperBound <= used,
                         "body range outside the consumed bytes")
            add(.body(Array(slice[r])), to: &t)
        case .trailers:
            add(.trailers(trailers()), to: &t)
        case .end:
            add(.end, to: &t)
            messages += 1
            if messages >= maxMessages || off >= n { return t }
            next()
        case .error:
            add(.error, to: &t)
            return t
        }
        if off == avail && avail < n { grow() }
    }
}

private func isLowerToken(_ name: ArraySlice<UInt8>) -> Bool {
    !name.isEmpty && name.allSatisfy { !($0 >= 0x41 && $0 <= 0x5A) }
}

private func checkH2Fields(_ h: H2Headers, request: Bool) {
    for i in h.indices {
        let f = h[i]
        require(isLowerToken(f.name), "h2 field name empty or not lower case")
        require(!H2Translate.isConnectionSpecific(f.name), "connection-specific field in h2")
        require(!f.value.contains(0x0D) && !f.value.contains(0x0A), "CR/LF in an h2 field value")
        if request {
            require(!H2Bytes.equalsLowercase(f.name, "host"), "host field in an h2 request")
            if H2Bytes.equalsLowercase(f.name, "te") {
                require(H2Bytes.equalsLowercase(f.value, "trailers"), "te other than trailers")
            }
        }
    }
}

/// The end of a chunked body written by an encoder: a strict scanner finds the end exactly at
/// the end, or (for a value no strict parser takes, e.g. a CTL) refuses it, never earlier.
private func checkChunked(_ body: [UInt8], clean: Bool) {
    var sc = ChunkedBodyScanner()
    let r = body.withUnsafeBytes { sc.scan($0) }
    switch r {
    case .finished(let m): require(m == body.count, "chunked body ends early (desync)")
    case .consumed: fatalError("chunked body written without its end")
    case .error: require(!clean, "chunked body of clean bytes refused")
    }
}

/// Lines of `input` (split at LF, a CR before it kept) as h2 fields "name:value".
private func fields(_ lines: ArraySlice<ArraySlice<UInt8>>, lower: Bool) -> H2Headers {
    var h = H2Headers()
    for l in lines.prefix(24) {
        guard let c = l.dropFirst().firstIndex(of: 0x3A) else { continue }
        var name = Array(l[l.startIndex..<c])
        if lower { name = name.map(H2Bytes.lower) }
        var v = l[(c + 1)...]
        while v.first == 0x20 { v = v.dropFirst() }
        h.append(name: name, value: v)
    }
    return h
}

private func isClean(_ h: H2Headers) -> Bool {
    for i in h.indices {
        let f = h[i]
        guard H2Bytes.isTokenString(f.name), H2Translate.allowedInTrailers(f.name) else { continue }
        for b in f.value where (b < 0x20 && b != 0x09 && b != 0x0D && b != 0x0A && b != 0) || b == 0x7F { return false }
    }
    return true
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    guard size >= 4 else { return 0 }
    let c0 = all[0], c1 = Int(all[1]), c2 = Int(all[2]), c3 = all[3]
    let input = UnsafeRawBufferPointer(rebasing: all[4...])
    let methods: [HTTPMethod] = [.get, .head, .post, .connect, .put, .options, .delete, .other]
    let limits = HTTPLimits(maxRequestLine: 1024, maxHeadBytes: 2048, maxHeaders: 24)

    // 1. HTTP/1.1 response -> HTTP/2, whole and split.
    func responseRun(_ a: Int, _ b: Int) -> [TEvent] {
        var t = HTTP1ToH2Response(requestMethod: methods[Int(c0 & 7)], limits: limits)
        var m = 0
        return drive(input, a, b, maxMessages: 4,
            step: { t.step($0) },
            head: {
                require(t.status >= 100 && t.status <= 999, "status out of range")
                checkH2Fields(t.headers, request: false)
                return [UInt8(truncatingIfNeeded: t.status), UInt8(truncatingIfNeeded: t.status >> 8),
                        t.endStream ? 1 : 0] + flatten(t.headers)
            },
            trailers: { flatten(t.trailers) },
            next: { m += 1; t.reset(requestMethod: methods[(Int(c0) + m) & 7]) },
            eof: { t.endOfInput() })
    }
    let r1 = responseRun(0, 0)
    let r2 = responseRun(c1, c2)
    require(r1 == r2, "HTTP1ToH2Response: split run differs")

    // 2. HTTP/1.1 request -> HTTP/2, whole and split; its head back to HTTP/1.1.
    var heads: [(H2RequestHead, Bool)] = []
    func requestRun(_ a: Int, _ b: Int, keep: Bool) -> [TEvent] {
        var t = HTTP1ToH2Request(scheme: c0 & 8 == 0 ? "http" : "https", limits: limits)
        return drive(input, a, b, maxMessages: 4,
            step: { t.step($0) },
            head: {
                let h = t.head
                // Raw bytes may carry targets the data plane never forwards as they are (HTTPWriter
                // percent-encodes them; severe ones are refused): :path is checked in part 2b.
                require(!h.method.isEmpty && !h.path.isEmpty, "empty :method or :path")
                checkH2Fields(h.headers, request: true)
                if keep { heads.append((h, t.endStream)) }
                var e: [UInt8] = Array(h.method)
                e.append(0)
                e += h.path
                e.append(0)
                e += h.authority
                e += [0, t.endStream ? 1 : 0]
                return e + flatten(h.headers)
            },
            trailers: { flatten(t.trailers) },
            next: { t.reset() },
            eof: { nil })
    }
    let q1 = requestRun(0, 0, keep: true)
    let q2 = requestRun(c1, c2, keep: false)
    require(q1 == q2, "HTTP1ToH2Request: split run differs")
    for (h, end) in heads { checkRequestEncoding(h, endStream: end, body: [], trailers: nil) }

    // 2b. The data plane's path to an h2 target: a request the HTTP/1 exchange forwards in
    // defensive mode (not severe), as HTTPWriter writes it, translated by HTTP1ToH2Request.
    var parser = HTTPRequestParser(limits: limits)
    if parser.parse(input) == .complete, parser.head.verdict.klass < .severe {
        var w = [UInt8](repeating: 0, count: 8192)
        let options = HTTPWriter.ForwardOptions(clientAddress: .init("192.0.2.1"), port: 80, traceID: 42)
        let written = w.withUnsafeMutableBytes { HTTPWriter.writeUpstreamHead(parser.head, source: input, into: $0, options: options) }
        if let n = written {
            var t = HTTP1ToH2Request()
            let (st, used) = w.withUnsafeBytes { t.step(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            if st == .head {
                require(used == n, "written head not consumed whole")
                let h = t.head
                require(H2Bytes.isTokenString(h.method), ":method not a token")
                require(h.path.first == 0x2F || (h.path.elementsEqual([0x2A]) && H2Bytes.equalsExactly(h.method, "OPTIONS")),
                        ":path neither /... nor * (OPTIONS)")
                require(h.path.allSatisfy { $0 > 0x20 && $0 != 0x7F }, ":path with SP, CTL or DEL")
                // RFC 9113 §8.3.1 / RFC 3986 §3.2: no SP, CTL, DEL, delimiter or userinfo (the
                // bytes H2ToHTTP1Request refuses in an :authority it receives).
                require(!h.authority.contains { $0 <= 0x20 || $0 == 0x7F || $0 == 0x2F || $0 == 0x3F || $0 == 0x23 || $0 == 0x40 },
                        ":authority with SP, CTL, DEL, '/', '?', '#' or '@'")
                checkH2Fields(h.headers, request: true)
            }
        }
    }

    // 3. HTTP/2 heads, bodies and trailers made of input bytes -> HTTP/1.1.
    let lines = Array(input).split(separator: 0x0A, maxSplits: 64, omittingEmptySubsequences: false)
    let lower = c0 & 8 == 0
    if let first = lines.first {
        let parts = first.split(separator: 0x20, maxSplits: 3, omittingEmptySubsequences: false)
        let method = parts.count > 0 ? Array(parts[0]) : []
        let path = parts.count > 1 ? Array(parts[1]) : []
        let authority = parts.count > 2 ? Array(parts[2]) : []
        let blank = lines.dropFirst().firstIndex { $0.isEmpty || $0.elementsEqual([0x0D]) } ?? lines.endIndex
        let headers = fields(lines[1..<blank], lower: lower)
        let rest = lines[min(blank + 1, lines.endIndex)...]
        let body = Array(rest.first ?? [])
        let trailers = fields(rest.dropFirst(), lower: lower)
        let head = H2RequestHead(method: method[...], scheme: ArraySlice("http".utf8),
                                 authority: authority[...], path: path[...], headers: headers)
        checkRequestEncoding(head, endStream: c0 & 16 != 0, body: body, trailers: trailers)

        let statuses = [200, 204, 304, 100, 101, 404, 599, 600, 99, 0, -1, 999, 206, 500, 103, 302]
        let status = statuses[Int((c0 >> 5) ^ (c3 & 0xF)) & 15]
        for (m, end) in [(methods[Int(c3 >> 4) & 7], c0 & 16 != 0), (HTTPMethod.head, false)] {
            // CONNECT never reaches an h2 target (both request translators refuse it), and a 2xx
            // to CONNECT is a tunnel in HTTP/1.1, framed by neither side.
            if m == .connect { continue }
            var enc = H2ToHTTP1Response(requestMethod: m)
            var out: [UInt8] = []
            guard enc.encodeHead(status: status, headers: headers, endStream: end, into: &out) else { continue }
            require(status >= 100 && status <= 599, "status outside 100...599 written")
            let headLen = out.count
            if !end { enc.encodeBody(body, into: &out) }
            enc.encodeEnd(trailers: trailers, into: &out)
            var p = HTTPResponseParser()
            let r = out.withUnsafeBytes { p.parse(UnsafeRawBufferPointer(rebasing: $0[..<headLen]), requestMethod: m) }
            if r == .complete, !p.head.isInformational {
                require(p.head.headLength == headLen, "response head length differs")
                require((p.head.framing == .chunked) == enc.encoder.chunked, "response framed unlike its body")
                require(p.head.framing != .untilClose, "response body until close")
            }
            if enc.encoder.chunked { checkChunked(Array(out[headLen...]), clean: isClean(trailers)) }
        }
    }

    // 4. gRPC health-check responses.
    _ = GRPC.parseHealthCheckResponse(UnsafeRawBufferPointer(rebasing: input[...]))
    if input.count > 0 { _ = GRPC.parseHealthCheckResponse(input.dropFirst()) }
    let v = Int(c3 & 3)
    let wellFormed: [UInt8] = [0, 0, 0, 0, 2, 0x08, UInt8(v)]
    require(GRPC.parseHealthCheckResponse(wellFormed)?.rawValue == v, "health status misread")
    let service = String(decoding: input.prefix(40), as: UTF8.self)
    require(GRPC.parseHealthCheckResponse(GRPC.healthCheckRequest(service: service)) != nil,
                 "well-formed message refused")
    return 0
}

/// H2ToHTTP1Request on `head`: output our HTTP/1 parser accepts must be framed as written.
private func checkRequestEncoding(_ head: H2RequestHead, endStream: Bool, body: [UInt8], trailers: H2Headers?) {
    var enc = H2ToHTTP1Request()
    var out: [UInt8] = []
    guard case .success = enc.encodeHead(head, endStream: endStream, into: &out) else {
        require(out.isEmpty, "failed encodeHead wrote bytes")
        return
    }
    let headLen = out.count
    if !endStream { enc.encodeBody(body, into: &out) }
    enc.encodeEnd(trailers: trailers, into: &out)
    var p = HTTPRequestParser()
    let r = out.withUnsafeBytes { p.parse(UnsafeRawBufferPointer(rebasing: $0[..<headLen])) }
    if r == .complete {
        require(p.head.headLength == headLen, "request head length differs")
        require((p.head.framing == .chunked) == enc.encoder.chunked, "request framed unlike its body")
        if case .contentLength = p.head.framing { require(!enc.encoder.chunked) }
    }
    if enc.encoder.chunked { checkChunked(Array(out[headLen...]), clean: trailers.map(isClean) ?? true) }
}
