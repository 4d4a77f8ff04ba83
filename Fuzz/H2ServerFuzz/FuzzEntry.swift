// libFuzzer entry point over H2ServerSession (nghttp2 + H2FrameGuard + the event arena), driven
// as the data plane drives it (SluiceProxy/Worker+H2.swift) but without sockets: a fresh session
// per input, hostile client bytes in input-chosen chunks, every event drained after each
// `receive`, responses, bodies, trailers, resets and window credit chosen by input bits, and
// `produceOutput` into a 16 KiB buffer until nothing is left. Compiled with Sources/SluiceHTTP2
// into one module (SluiceHTTP and nghttp2 come from ./prebuild).
//
// Input: 4 control bytes, then the client's bytes.
//   c0  bit 0: prepend the client preface; bit 1: tight limits (small windows, header and abuse
//       bounds, so they are reached); bit 2: shutdownNotice after the first chunk; bit 3: goaway
//       at the end; bits 4-7: clock step per chunk in 100 ms (0: all in the same instant).
//   c1, c2  chunk sizes, alternating (0: the rest of the input at once).
//   c3  response policy: mixed with the stream id, picks what is done with each request.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * nothing traps, whatever the bytes, the split and the answers;
// * `produceOutput` never reports more than its capacity, and ends (bounded rounds);
// * requests arrive on odd, increasing stream ids, once per stream; events name only streams
//   the caller heard of (or 0 for GOAWAY); every header field view reads inside its storage;
// * a closed session stays closed with the same reason.

/// A checked property: unlike `precondition` in -O builds, it prints its message, then traps.
@inline(__always) private func require(_ ok: Bool, _ message: @autoclosure () -> String = "") {
    if !ok { fatalError(message()) }
}

private let outCapacity = 16 * 1024

private struct StreamState {
    var responded = false
    var deferred = false
    var request = H2ToHTTP1Request()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    guard size >= 4 else { return 0 }
    let c0 = all[0], c1 = Int(all[1]), c2 = Int(all[2]), policy = all[3]
    var input: [UInt8] = []
    if c0 & 1 != 0 { input += HTTP2.clientPreface }
    input += all[4...]

    var settings = H2ServerSettings()
    if c0 & 2 != 0 {
        settings.maxConcurrentStreams = 3
        settings.initialWindowSize = 64
        settings.connectionWindowSize = 128
        settings.maxHeaderListSize = 200
        settings.maxHeaders = 4
        settings.maxResetsPerSecond = 3
        settings.maxSettingsPerSecond = 3
        settings.maxEmptyFramesPerSecond = 3
        settings.maxPingsPerSecond = 3
        settings.maxPriorityPerSecond = 3
        settings.maxWindowUpdatesPerSecond = 3
        settings.maxContinuations = 2
    }
    let session = H2ServerSession(settings: settings)
    var out = [UInt8](repeating: 0, count: outCapacity)
    var streams: [Int32: StreamState] = [:]
    var lastRequest: Int32 = 0
    var heard = Set<Int32>()
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
        _ = session.openStreams
    }

    func touch(_ h: H2Headers) {
        var sum = 0
        for i in h.indices {
            let f = h[i]
            sum &+= f.name.count &+ f.value.count
        }
        _ = h.first("content-type")
        _ = sum
    }

    /// Body and trailers for a stream that responded without END_STREAM.
    func finishBody(_ id: Int32, _ d: UInt8) {
        let body: [UInt8] = Array("hello from sluice".utf8)
        body.withUnsafeBytes { b in
            let part = UnsafeRawBufferPointer(rebasing: b[0..<Int(d % 17)])
            switch d & 3 {
            case 0:
                session.sendData(stream: id, part, endStream: false)
                session.sendTrailers(stream: id, H2Headers([("grpc-status", "0"), ("grpc-message", "ok")]))
            case 1:
                session.sendData(stream: id, part, endStream: true)
            case 2:
                session.sendData(stream: id, part, endStream: false)
                session.sendData(stream: id, UnsafeRawBufferPointer(start: nil, count: 0), endStream: true)
            default:
                session.sendTrailers(stream: id, H2Headers([("x-trailer", "t"), ("content-length", "1")]))
            }
            _ = session.bufferedData(stream: id)
        }
    }

    func respond(_ id: Int32, _ d: UInt8) {
        guard var s = streams[id], !s.responded else { return }
        s.responded = true
        streams[id] = s
        switch (d >> 2) & 3 {
        case 0:
            session.respond(stream: id, status: 204, headers: [("server", "sluice")], endStream: true)
        case 1:
            session.respond(stream: id, status: 200, headers: [("content-type", "text/plain"), ("connection", "close")],
                            endStream: false)
            finishBody(id, d >> 4)
        case 2:
            session.respond(stream: id, status: 200, headers: GRPC.trailersOnlyHeaders(status: 503), endStream: false)
            finishBody(id, d)
        default:
            session.respond(stream: id, status: 404, headers: H2Headers(), endStream: false)
            finishBody(id, d >> 3)
        }
    }

    func handleEvents() {
        while let e = session.nextEvent() {
            switch e {
            case .request(let id, let head, let endStream):
                require(id > 0 && id & 1 == 1 && id > lastRequest, "request on a bad stream id")
                lastRequest = id
                heard.insert(id)
                touch(head.headers)
                _ = head.methodString
                _ = head.pathString
                _ = head.authorityString
                require(head.headers.count <= settings.maxHeaders, "more headers than the limit")
                var st = StreamState()
                scratch.removeAll(keepingCapacity: true)
                let ok: Bool
                switch st.request.encodeHead(head, endStream: endStream, into: &scratch) {
                case .success: ok = true
                case .failure: ok = false
                }
                if endStream { st.request.encodeEnd(trailers: nil, into: &scratch) }
                streams[id] = st
                let d = policy ^ UInt8(truncatingIfNeeded: id &* 37)
                if !ok {
                    session.respond(stream: id, status: 400, headers: [("content-type", "text/plain")], endStream: true)
                    streams[id]?.responded = true
                } else if d & 3 == 0 {
                    session.reset(stream: id, code: d & 4 == 0 ? H2ErrorCode.cancel : H2ErrorCode.refusedStream)
                } else if d & 3 == 1 && !endStream {
                    streams[id]?.deferred = true  // answer once the request ends
                } else {
                    respond(id, d)
                }
            case .headersTooLarge(let id):
                require(id > 0 && id & 1 == 1 && id > lastRequest, "431 on a bad stream id")
                lastRequest = id
                heard.insert(id)
                session.respond(stream: id, status: 431, headers: [("content-type", "text/plain")], endStream: true)
            case .data(let id, let bytes):
                require(heard.contains(id), "data on an unknown stream")
                if let s = streams[id] {
                    scratch.removeAll(keepingCapacity: true)
                    s.request.encodeBody(bytes, into: &scratch)
                }
                // Credit: all of it, half, or (sometimes) none, as a slow target would.
                let d = policy >> 4 ^ UInt8(truncatingIfNeeded: bytes.count)
                switch d & 3 {
                case 0: break
                case 1: session.consume(stream: id, bytes: bytes.count / 2 + 1)
                default: session.consume(stream: id, bytes: bytes.count)
                }
            case .trailers(let id, let headers):
                require(heard.contains(id), "trailers on an unknown stream")
                touch(headers)
                if let s = streams[id] {
                    scratch.removeAll(keepingCapacity: true)
                    s.request.encodeEnd(trailers: headers, into: &scratch)
                }
            case .endStream(let id):
                require(heard.contains(id), "end on an unknown stream")
                if let s = streams[id], s.deferred {
                    streams[id]?.deferred = false
                    respond(id, policy ^ 0x55)
                }
            case .reset(let id, _):
                require(heard.contains(id), "reset of an unknown stream")
                streams[id] = nil
            case .streamClosed(let id):
                require(heard.contains(id), "close of an unknown stream")
                streams[id] = nil
            case .goaway:
                break
            }
        }
        require(session.pendingEvents == 0)
    }

    drainOutput()  // the server's SETTINGS
    var off = 0
    var chunk = 0
    input.withUnsafeBytes { buf in
        while off < buf.count && closed == nil {
            let want = chunk & 1 == 0 ? c1 : c2
            let n = want == 0 ? buf.count - off : min(want, buf.count - off)
            let r = session.receive(UnsafeRawBufferPointer(rebasing: buf[off..<(off + n)]), now: now)
            off += n
            chunk += 1
            now &+= step
            handleEvents()
            if case .close(let reason) = r {
                closed = reason
                require(session.closeReason == reason, "closeReason differs from receive")
            }
            if chunk == 1 && c0 & 4 != 0 { session.shutdownNotice() }
            drainOutput()
            handleEvents()  // output may close streams
        }
    }
    if let closed {
        // A closed session stays closed.
        let r = [UInt8](repeating: 0, count: 9).withUnsafeBytes { session.receive($0, now: now) }
        require(r == .close(closed), "session reopened")
        handleEvents()
    } else {
        // Answer what is still open, as streams finishing after the last read would.
        for id in streams.keys.sorted() { respond(id, policy) }
    }
    if c0 & 8 != 0 { session.goaway(code: H2ErrorCode.noError) }
    drainOutput()
    handleEvents()
    drainOutput()
    return 0
}
