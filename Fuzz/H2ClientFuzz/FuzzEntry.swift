// libFuzzer entry point over H2ClientSession (the target side of `protocol_version: http2 | grpc`),
// driven as SluiceProxy/H2Upstream.swift drives it but without sockets: a fresh session per input,
// 1-3 requests submitted (some with a body and trailers), then hostile target bytes in
// input-chosen chunks, every event drained after each `receive` and translated back to HTTP/1.1
// with H2ToHTTP1Response, window credit, resets and late requests chosen by input bits, and
// `produceOutput` into a 16 KiB buffer until nothing is left. Compiled with Sources/SluiceHTTP2
// into one module (SluiceHTTP and nghttp2 come from ./prebuild).
//
// Input: 4 control bytes, then the target's bytes (no preface: a server starts with SETTINGS).
//   c0  bits 0-1: requests (c0 & 3) % 3 + 1; bit 2: tight limits; bit 3: request bodies follow
//       their heads; bits 4-7: clock step per chunk in 100 ms.
//   c1, c2  chunk sizes, alternating (0: the rest of the input at once).
//   c3  policy: mixed with the stream id, picks credit, resets and a late request.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * nothing traps, whatever the target sends and however it is split;
// * `produceOutput` never reports more than its capacity, and ends (bounded rounds);
// * stream ids are odd and increasing; events name only streams this client opened (or 0 for
//   GOAWAY); every header field view reads inside its storage;
// * after a GOAWAY event, or once closed, `submitRequest` opens nothing;
// * a closed session stays closed with the same reason.

import SluiceHTTP

/// A checked property: unlike `precondition` in -O builds, it prints its message, then traps.
@inline(__always) private func require(_ ok: Bool, _ message: @autoclosure () -> String = "") {
    if !ok { fatalError(message()) }
}

private let outCapacity = 16 * 1024

private struct StreamState {
    var response: H2ToHTTP1Response
    var headSeen = false
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    guard size >= 4 else { return 0 }
    let c0 = all[0], c1 = Int(all[1]), c2 = Int(all[2]), policy = all[3]
    let input = UnsafeRawBufferPointer(rebasing: all[4...])

    var settings = H2ClientSettings()
    if c0 & 4 != 0 {
        settings.initialWindowSize = 64
        settings.connectionWindowSize = 128
        settings.maxHeaderListSize = 200
        settings.maxHeaders = 4
        settings.maxResetsPerSecond = 3
        settings.maxSettingsPerSecond = 3
        settings.maxEmptyFramesPerSecond = 3
        settings.maxPingsPerSecond = 3
        settings.maxContinuations = 2
    }
    let session = H2ClientSession(settings: settings)
    var out = [UInt8](repeating: 0, count: outCapacity)
    var streams: [Int32: StreamState] = [:]
    var opened = Set<Int32>()
    var lastID: Int32 = 0
    var goawaySeen = false
    var closed: H2CloseReason?
    var now: UInt64 = 5_000_000_000
    let step = UInt64(c0 >> 4) &* 100_000_000
    var scratch: [UInt8] = []

    func drainOutput() {
        var rounds = 0
        while rounds < 256 {
            rounds += 1
            let n = out.withUnsafeMutableBytes { session.produceOutput(into: $0.baseAddress!, capacity: outCapacity) }
            require(n >= 0 && n <= outCapacity, "produceOutput beyond capacity")
            if n == 0 { break }
        }
        _ = session.wantsWrite
        _ = session.wantsRead
        _ = session.isFinished
        require(session.activeStreams >= 0)
        _ = session.remoteMaxConcurrentStreams
    }

    func touch(_ h: H2Headers) {
        var sum = 0
        for i in h.indices {
            let f = h[i]
            sum &+= f.name.count &+ f.value.count
        }
        _ = h.first("grpc-status")
        _ = sum
    }

    /// Opens a request; `k` picks its shape.
    func submit(_ k: UInt8) {
        let head: H2RequestHead
        switch k % 3 {
        case 0: head = H2RequestHead(method: "GET", authority: "target.example", path: "/")
        case 1:
            head = H2RequestHead(method: "POST", authority: "target.example", path: "/grpc.health.v1.Health/Check",
                                 headers: [("content-type", "application/grpc"), ("te", "trailers")])
        default:
            head = H2RequestHead(method: "PUT", scheme: "https", authority: "t:8443", path: "/upload?x=1",
                                 headers: [("content-length", "5"), ("x-a", "b"), ("connection", "close")])
        }
        let withBody = c0 & 8 != 0 && k % 3 != 0
        let id = session.submitRequest(head, endStream: !withBody)
        if goawaySeen || closed != nil { require(id == nil, "request opened after GOAWAY or close") }
        guard let id else { return }
        require(id > lastID && id & 1 == 1, "bad client stream id")
        lastID = id
        opened.insert(id)
        let method: HTTPMethod = k % 3 == 0 ? .get : (k % 3 == 1 ? .post : .put)
        streams[id] = StreamState(response: H2ToHTTP1Response(requestMethod: method))
        if withBody {
            let msg = k % 3 == 1 ? GRPC.healthCheckRequest(service: "svc") : Array("hello".utf8)
            msg.withUnsafeBytes { b in
                if k & 4 == 0 {
                    session.sendData(stream: id, b, endStream: false)
                    session.sendTrailers(stream: id, H2Headers([("x-checksum", "1")]))
                } else {
                    session.sendData(stream: id, b, endStream: true)
                }
            }
            _ = session.bufferedData(stream: id)
        }
    }

    func handleEvents() {
        while let e = session.nextEvent() {
            switch e {
            case .responseHead(let id, let status, let headers, let endStream):
                require(opened.contains(id), "response on a stream not opened")
                touch(headers)
                if var s = streams[id] {
                    scratch.removeAll(keepingCapacity: true)
                    let ok = s.response.encodeHead(status: status, headers: headers, endStream: endStream, into: &scratch)
                    s.headSeen = true
                    streams[id] = s
                    if !ok { session.reset(stream: id, code: H2ErrorCode.internalError) }
                    if endStream { s.response.encodeEnd(trailers: nil, into: &scratch) }
                }
            case .data(let id, let bytes):
                require(opened.contains(id), "data on a stream not opened")
                if let s = streams[id] {
                    scratch.removeAll(keepingCapacity: true)
                    s.response.encodeBody(bytes, into: &scratch)
                    _ = GRPC.parseHealthCheckResponse(bytes)  // as the gRPC health check reads a reply
                }
                let d = policy ^ UInt8(truncatingIfNeeded: bytes.count)
                switch d & 3 {
                case 0: break
                case 1: session.consume(stream: id, bytes: bytes.count / 2 + 1)
                case 2: session.reset(stream: id, code: H2ErrorCode.cancel)
                default: session.consume(stream: id, bytes: bytes.count)
                }
            case .trailers(let id, let headers):
                require(opened.contains(id), "trailers on a stream not opened")
                touch(headers)
                if let s = streams[id] {
                    scratch.removeAll(keepingCapacity: true)
                    s.response.encodeEnd(trailers: headers, into: &scratch)
                }
            case .endStream(let id):
                require(opened.contains(id), "end on a stream not opened")
                if policy & 0x40 != 0 { submit(policy >> 2 ^ UInt8(truncatingIfNeeded: id)) }
            case .reset(let id, _):
                require(opened.contains(id), "reset of a stream not opened")
                streams[id] = nil
            case .streamClosed(let id):
                require(opened.contains(id), "close of a stream not opened")
                streams[id] = nil
            case .goaway:
                goawaySeen = true
            }
        }
        require(session.pendingEvents == 0)
    }

    let requests = Int(c0 & 3) % 3 + 1
    for i in 0..<requests { submit(policy &+ UInt8(i)) }
    drainOutput()  // preface, SETTINGS, HEADERS (and bodies)

    var off = 0
    var chunk = 0
    while off < input.count && closed == nil {
        let want = chunk & 1 == 0 ? c1 : c2
        let n = want == 0 ? input.count - off : min(want, input.count - off)
        let r = session.receive(UnsafeRawBufferPointer(rebasing: input[off..<(off + n)]), now: now)
        off += n
        chunk += 1
        now &+= step
        handleEvents()
        if case .close(let reason) = r {
            closed = reason
            require(session.closeReason == reason, "closeReason differs from receive")
        }
        drainOutput()
        handleEvents()
        if chunk == 2 && policy & 0x80 != 0 { submit(policy) }
    }
    if let closed {
        let r = [UInt8](repeating: 0, count: 9).withUnsafeBytes { session.receive($0, now: now) }
        require(r == .close(closed), "session reopened")
        handleEvents()
        submit(0)
    }
    if policy & 0x20 != 0 { session.goaway(code: H2ErrorCode.noError) }
    drainOutput()
    handleEvents()
    return 0
}
