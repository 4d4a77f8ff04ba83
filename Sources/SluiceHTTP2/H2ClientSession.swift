internal import CNGHTTP2

/// A target-side HTTP/2 connection (`protocol_version: http2 | grpc`) on nghttp2, sans-I/O, in
/// the style of `H2ServerSession`: `submitRequest` opens streams, `receive` turns the target's
/// bytes into `H2ClientEvent`s, `produceOutput` gives the bytes to write (the client preface first).
public final class H2ClientSession {
    private let core: H2Core
    public let settings: H2ClientSettings

    public init(settings: H2ClientSettings = H2ClientSettings()) {
        self.settings = settings
        let iv: [(id: Int32, value: UInt32)] = [
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(clamping: min(max(0, settings.initialWindowSize), Int(Int32.max)))),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(clamping: max(0, settings.maxHeaderListSize))),
        ]
        core = H2Core(role: .client, bounds: settings.bounds, maxHeaderListSize: settings.maxHeaderListSize,
                      maxHeaders: settings.maxHeaders, settings: iv,
                      connectionWindow: settings.connectionWindowSize, maxContinuations: settings.maxContinuations)
    }

    /// The target's SETTINGS_MAX_CONCURRENT_STREAMS; 100 until its SETTINGS arrive (RFC 9113
    /// §6.5.2 recommends no less, and a first burst above it would be refused).
    public var remoteMaxConcurrentStreams: Int {
        let v = Int(clamping: core.remoteSetting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
        return core.remoteSettingsReceived ? v : min(v, 100)
    }

    /// Streams submitted and not yet closed.
    public var activeStreams: Int { core.activeStreams }

    /// Opens a stream. Returns nil when the target's concurrency limit is reached (queue the
    /// request or open another connection) or nghttp2 refused. With `endStream: false` the body
    /// follows with `sendData`/`sendTrailers`.
    public func submitRequest(_ head: H2RequestHead, endStream: Bool) -> Int32? {
        guard let session = core.session, !core.dead, core.closeReason == nil, !core.goawayReceived,
            core.activeStreams < remoteMaxConcurrentStreams
        else { return nil }
        let pseudo: [(StaticString, ArraySlice<UInt8>)] = [
            (":method", head.method), (":scheme", head.scheme), (":authority", head.authority), (":path", head.path),
        ]
        let id = core.withNV(pseudo: pseudo, headers: head.headers) { nv, n -> Int32 in
            if endStream { return nghttp2_submit_request(session, nil, nv, n, nil, nil) }
            var p = H2Core.provider()
            return nghttp2_submit_request(session, nil, nv, n, &p, nil)
        }
        guard id > 0 else { return nil }
        core.noteSubmitted(id, hasProvider: !endStream)
        return id
    }

    public func receive(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> H2Receive { core.receive(bytes, now: now) }
    public func receive(_ bytes: UnsafeRawBufferPointer) -> H2Receive {
        core.receive(bytes, now: H2Core.monotonicNanos())
    }

    public var closeReason: H2CloseReason? { core.closeReason }

    /// The next event, or nil when all were taken (same rules as `H2ServerSession.nextEvent`).
    public func nextEvent() -> H2ClientEvent? {
        guard let e = core.nextRawEvent() else { return nil }
        switch e {
        case .response(let s, let st, let f, let end):
            return .responseHead(stream: s, status: st, headers: core.headers(f), endStream: end)
        case .request(let s, _, _, _, _, _, _, _), .tooLarge(let s):
            return .reset(stream: s, errorCode: H2ErrorCode.protocolError)
        case .data(let s, let span): return .data(stream: s, bytes: core.slice(span))
        case .trailers(let s, let f): return .trailers(stream: s, headers: core.headers(f))
        case .endStream(let s): return .endStream(stream: s)
        case .reset(let s, let c): return .reset(stream: s, errorCode: c)
        case .closed(let s): return .streamClosed(stream: s)
        case .goaway(let l, let c): return .goaway(lastStreamID: l, errorCode: c)
        }
    }

    public var pendingEvents: Int { core.pendingEventCount }

    @discardableResult
    public func sendData(stream: Int32, _ bytes: UnsafeRawBufferPointer, endStream: Bool) -> Bool {
        core.sendData(stream: stream, bytes, endStream: endStream)
    }

    @discardableResult
    public func sendTrailers(stream: Int32, _ headers: H2Headers) -> Bool { core.sendTrailers(stream: stream, headers) }

    public func bufferedData(stream: Int32) -> Int { core.bufferedData(stream: stream) }

    /// Reports response-body bytes forwarded to the client.
    public func consume(stream: Int32, bytes: Int) { core.consume(stream: stream, bytes: bytes) }

    public func reset(stream: Int32, code: UInt32 = H2ErrorCode.cancel) { core.reset(stream: stream, code: code) }

    public func goaway(code: UInt32 = H2ErrorCode.noError) { core.goaway(code: code, lastStreamID: 0) }

    public func produceOutput(into: UnsafeMutableRawPointer, capacity: Int) -> Int {
        core.produceOutput(into: into, capacity: capacity)
    }

    public var wantsWrite: Bool { core.wantsWrite }
    public var wantsRead: Bool { core.wantsRead }
    public var isFinished: Bool { core.isFinished }
}

@available(*, unavailable) extension H2ClientSession: Sendable {}
