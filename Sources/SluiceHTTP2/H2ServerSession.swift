internal import CNGHTTP2

/// A frontend HTTP/2 connection on nghttp2, sans-I/O: bytes in with `receive`, events out with
/// `nextEvent`, frames out with `produceOutput`. One loop thread owns it.
///
/// Events: `receive` (and `produceOutput`, which may close streams) append events; take them
/// with `nextEvent()` before the next `receive`. Byte slices in events share the session's arena:
/// copy what you keep past the next `receive`, or the arena copies itself once (correct, slower).
///
/// Abuse bounds (SPEC §3): on a rate bound the session queues GOAWAY and `receive` returns
/// `.close(reason)`; the frame that crossed the bound and everything after it is never given to
/// nghttp2, and no request that arrived in that read is delivered. A request reset in the same
/// read that opened it is never delivered either (rapid reset costs the proxy nothing).
///
/// Backpressure: request bodies are flow-controlled by hand; call `consume(stream:bytes:)` with
/// what was forwarded to the target (a slow target stalls the client's window). Response bodies
/// queue per stream; stop reading the target while `bufferedData(stream:)` is above your mark.
public final class H2ServerSession {
    private let core: H2Core
    public let settings: H2ServerSettings

    public init(settings: H2ServerSettings = H2ServerSettings()) {
        self.settings = settings
        let iv: [(id: Int32, value: UInt32)] = [
            (Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), UInt32(clamping: max(1, settings.maxConcurrentStreams))),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(clamping: min(max(0, settings.initialWindowSize), Int(Int32.max)))),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(clamping: max(0, settings.maxHeaderListSize))),
        ]
        core = H2Core(role: .server, bounds: settings.bounds, maxHeaderListSize: settings.maxHeaderListSize,
                      maxHeaders: settings.maxHeaders, settings: iv,
                      connectionWindow: settings.connectionWindowSize, maxContinuations: settings.maxContinuations)
    }

    /// Feeds bytes read from the client (the connection preface included). `now` is a monotonic
    /// clock in nanoseconds for the per-second bounds.
    public func receive(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> H2Receive {
        core.receive(bytes, now: now)
    }

    /// `receive` with the monotonic clock.
    public func receive(_ bytes: UnsafeRawBufferPointer) -> H2Receive {
        core.receive(bytes, now: H2Core.monotonicNanos())
    }

    /// The reason the session closed, if it did.
    public var closeReason: H2CloseReason? { core.closeReason }

    /// The next event, or nil when all were taken.
    public func nextEvent() -> H2ServerEvent? {
        guard let e = core.nextRawEvent() else { return nil }
        switch e {
        case .request(let s, let m, let sc, let a, let p, let f, let count, let end):
            var head = H2RequestHead(method: core.slice(m), scheme: core.slice(sc), authority: core.slice(a),
                                     path: core.slice(p), headers: core.headers(f))
            head.headerCount = count
            return .request(stream: s, head: head, endStream: end)
        case .tooLarge(let s): return .headersTooLarge(stream: s)
        case .response(let s, _, _, _): return .reset(stream: s, errorCode: H2ErrorCode.protocolError)
        case .data(let s, let span): return .data(stream: s, bytes: core.slice(span))
        case .trailers(let s, let f): return .trailers(stream: s, headers: core.headers(f))
        case .endStream(let s): return .endStream(stream: s)
        case .reset(let s, let c): return .reset(stream: s, errorCode: c)
        case .closed(let s): return .streamClosed(stream: s)
        case .goaway(let l, let c): return .goaway(lastStreamID: l, errorCode: c)
        }
    }

    /// How many events wait to be taken.
    public var pendingEvents: Int { core.pendingEventCount }

    /// Sends the final response head (status 200...999; interim 1xx are not sent). `headers` should be lower case (names are lower-cased anyway;
    /// connection-specific fields and pseudo-headers are dropped). With `endStream: false` the
    /// body follows with `sendData`/`sendTrailers`. False if the stream is gone or nghttp2 refused.
    @discardableResult
    public func respond(stream: Int32, status: Int, headers: H2Headers = H2Headers(), endStream: Bool) -> Bool {
        guard let session = core.session, !core.dead, core.streams[stream] != nil, status >= 200, status <= 999 else {
            return false
        }
        let rv = core.withNV(status: status, headers: headers) { nv, n -> Int32 in
            if endStream { return nghttp2_submit_response(session, stream, nv, n, nil) }
            var p = H2Core.provider()
            return nghttp2_submit_response(session, stream, nv, n, &p)
        }
        if rv != 0 { return false }
        core.noteResponded(stream, hasProvider: !endStream)
        return true
    }

    /// Convenience: header pairs as strings.
    @discardableResult
    public func respond(stream: Int32, status: Int, headers: [(String, String)], endStream: Bool) -> Bool {
        respond(stream: stream, status: status, headers: H2Headers(headers), endStream: endStream)
    }

    /// Queues response body bytes (copied). False if the stream is gone, has no body, or ended.
    @discardableResult
    public func sendData(stream: Int32, _ bytes: UnsafeRawBufferPointer, endStream: Bool) -> Bool {
        core.sendData(stream: stream, bytes, endStream: endStream)
    }

    /// Queues the trailers after the queued data; they end the stream.
    @discardableResult
    public func sendTrailers(stream: Int32, _ headers: H2Headers) -> Bool {
        core.sendTrailers(stream: stream, headers)
    }

    /// Response bytes queued on the stream and not yet framed (backpressure).
    public func bufferedData(stream: Int32) -> Int { core.bufferedData(stream: stream) }

    /// Reports request-body bytes forwarded, reopening the client's flow-control window.
    public func consume(stream: Int32, bytes: Int) { core.consume(stream: stream, bytes: bytes) }

    /// Resets the stream (RST_STREAM with `code`).
    public func reset(stream: Int32, code: UInt32 = H2ErrorCode.cancel) { core.reset(stream: stream, code: code) }

    /// Graceful shutdown, first step: GOAWAY with last-stream-id 2^31-1 (new streams still race in).
    public func shutdownNotice() { core.shutdownNotice() }

    /// GOAWAY with `code`; `lastStreamID` defaults to the last stream processed. After it no
    /// new stream is accepted; the session finishes when the open streams are done.
    public func goaway(code: UInt32 = H2ErrorCode.noError, lastStreamID: Int32? = nil) {
        core.goaway(code: code, lastStreamID: lastStreamID)
    }

    /// Serialises pending frames into `into` (at most `capacity` bytes); returns the count.
    /// Batch everything into one write (SWIFT-NOTES: one write per frame met Nagle).
    public func produceOutput(into: UnsafeMutableRawPointer, capacity: Int) -> Int {
        core.produceOutput(into: into, capacity: capacity)
    }

    /// Output is pending.
    public var wantsWrite: Bool { core.wantsWrite }
    /// The session still reads.
    public var wantsRead: Bool { core.wantsRead }
    /// Both directions are done: close the connection.
    public var isFinished: Bool { core.isFinished }
    /// Streams with state in the session (open or half-closed).
    public var openStreams: Int { core.streams.count }
}

@available(*, unavailable) extension H2ServerSession: Sendable {}
