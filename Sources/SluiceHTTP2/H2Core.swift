internal import CNGHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// A span of the session arena.
struct H2Span: Sendable {
    var start: Int
    var count: Int
}

/// A header block recorded in the session's field table.
struct H2BlockRef: Sendable {
    var fieldStart: Int
    var fieldCount: Int
}

/// Events as the core records them: spans into the arena, materialised into public events
/// (with slices) only when the caller takes them, so appending to the arena never copies it.
enum H2RawEvent: Sendable {
    case request(stream: Int32, method: H2Span, scheme: H2Span, authority: H2Span, path: H2Span,
                 fields: H2BlockRef, headerCount: Int, endStream: Bool)
    case tooLarge(stream: Int32)
    case response(stream: Int32, status: Int, fields: H2BlockRef, endStream: Bool)
    case data(stream: Int32, bytes: H2Span)
    case trailers(stream: Int32, fields: H2BlockRef)
    case endStream(stream: Int32)
    case reset(stream: Int32, code: UInt32)
    case closed(stream: Int32)
    case goaway(last: Int32, code: UInt32)

    var stream: Int32 {
        switch self {
        case .request(let s, _, _, _, _, _, _, _), .tooLarge(let s), .response(let s, _, _, _),
            .data(let s, _), .trailers(let s, _), .endStream(let s), .reset(let s, _), .closed(let s):
            return s
        case .goaway:
            return 0
        }
    }
}

/// The nghttp2 session shared by `H2ServerSession` and `H2ClientSession`: callbacks, the event
/// arena, per-stream outbound queues and flow control. One loop thread owns it (not Sendable).
///
/// Ownership: the core owns the `nghttp2_session*` and frees it in `deinit`. nghttp2 gets the
/// core as `user_data` unretained (`Unmanaged.passUnretained`): the session never outlives the
/// core that deletes it, so no retain is needed and none is leaked.
final class H2Core {
    enum Role { case server, client }

    /// Per-stream state.
    struct Stream {
        /// The caller was told about this stream (request / response head delivered, or the
        /// client opened it).
        var known = false
        /// The receive call in which the head was delivered (rapid-reset purge).
        var deliveredCall: UInt64 = 0
        /// The head was too large: body dropped, no events but `.tooLarge`/`.closed`.
        var tooLarge = false
        var headDelivered = false
        var peerReset = false
        /// Body bytes delivered but not yet `consume`d.
        var unconsumed = 0
        var out = H2ByteQueue()
        var outEnded = false
        var trailers: H2Headers?
        var deferred = false
        var hasProvider = false
        /// A response (server) was submitted.
        var responded = false
        /// The caller asked for RST_STREAM.
        var localReset = false
    }

    /// The header block being received.
    struct Block {
        var stream: Int32 = 0
        var active = false
        var arenaStart = 0
        var fieldStart = 0
        var listSize = 0
        var count = 0
        var tooLarge = false
        var method = H2Span(start: 0, count: 0)
        var scheme = H2Span(start: 0, count: 0)
        var authority = H2Span(start: 0, count: 0)
        var path = H2Span(start: 0, count: 0)
        var status = 0
    }

    let role: Role
    private(set) var session: OpaquePointer?
    private var frameGuard: H2FrameGuard
    let maxHeaderListSize: Int
    let maxHeaders: Int

    private(set) var events: [H2RawEvent] = []
    private(set) var readIndex = 0
    private(set) var arena: [UInt8] = []
    private(set) var fieldTable: [H2Field] = []

    var streams: [Int32: Stream] = [:]
    private var block = Block()
    private var callNumber: UInt64 = 0
    private var callStart = 0
    private var inReceive = false
    /// A DATA frame was serialised (stops the eager flush after `receive`).
    private var sentData = false
    /// Streams nghttp2 reset on the peer's behalf crossed the reset bound during this receive.
    private var provokedResetTrip = false
    private var receiveNow: UInt64 = 0
    /// The caller submitted a GOAWAY itself.
    private var localGoaway = false
    private(set) var closeReason: H2CloseReason?
    /// nghttp2 returned a fatal error: the session may not be used any more.
    private(set) var dead = false
    private var pendingOut: [UInt8] = []
    private var pendingHead = 0
    /// Client streams open (submitted, not closed).
    private(set) var activeStreams = 0
    /// Emptied outbound queues of closed streams, reused by new ones (their storage stays allocated).
    private var queuePool: [H2ByteQueue] = []
    static let maxPooledQueues = 32
    static let maxPooledQueueCapacity = 1 << 20
    /// The peer sent GOAWAY: open no new stream.
    private(set) var goawayReceived = false

    init(role: Role, bounds: H2AbuseBounds, maxHeaderListSize: Int, maxHeaders: Int,
         settings: [(id: Int32, value: UInt32)], connectionWindow: Int, maxContinuations: Int) {
        self.role = role
        frameGuard = H2FrameGuard(bounds: bounds, skipPreface: role == .server)
        self.maxHeaderListSize = maxHeaderListSize
        self.maxHeaders = maxHeaders
        events.reserveCapacity(64)
        arena.reserveCapacity(16384)
        fieldTable.reserveCapacity(128)

        var cbs: OpaquePointer?
        var opt: OpaquePointer?
        guard nghttp2_session_callbacks_new(&cbs) == 0, let cbs else {
            dead = true
            closeReason = .internalError
            return
        }
        defer { nghttp2_session_callbacks_del(cbs) }
        guard nghttp2_option_new(&opt) == 0, let opt else {
            dead = true
            closeReason = .internalError
            return
        }
        defer { nghttp2_option_del(opt) }
        nghttp2_option_set_no_auto_window_update(opt, 1)
        // Our own bound (H2FrameGuard) trips first and names the reason; nghttp2's stays a backstop.
        nghttp2_option_set_max_continuations(opt, max(1, maxContinuations) &+ 1)
        Self.installCallbacks(cbs)

        var s: OpaquePointer?
        let ud = Unmanaged.passUnretained(self).toOpaque()
        let rv = role == .server
            ? nghttp2_session_server_new2(&s, cbs, ud, opt)
            : nghttp2_session_client_new2(&s, cbs, ud, opt)
        guard rv == 0, let s else {
            dead = true
            closeReason = .internalError
            return
        }
        session = s
        var iv = settings.map { nghttp2_settings_entry(settings_id: $0.id, value: $0.value) }
        if nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count) != 0 {
            dead = true
            closeReason = .internalError
            return
        }
        let window = Int32(clamping: connectionWindow)
        _ = nghttp2_session_set_local_window_size(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, window)
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    @inline(__always) static func core(_ ud: UnsafeMutableRawPointer?) -> H2Core? {
        guard let ud else { return nil }
        return Unmanaged<H2Core>.fromOpaque(ud).takeUnretainedValue()
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(truncatingIfNeeded: ts.tv_sec) &* 1_000_000_000 &+ UInt64(truncatingIfNeeded: ts.tv_nsec)
    }

    // MARK: events

    /// The next undelivered event, or nil; also recycles the arena once everything is taken.
    func nextRawEvent() -> H2RawEvent? {
        guard readIndex < events.count else { return nil }
        let e = events[readIndex]
        readIndex &+= 1
        return e
    }

    var pendingEventCount: Int { events.count &- readIndex }

    /// Drops delivered events and the arena bytes they used (keeps a header block in progress).
    func recycle() {
        guard readIndex >= events.count else { return }
        events.removeAll(keepingCapacity: true)
        readIndex = 0
        if block.active {
            let a = block.arenaStart
            let f = block.fieldStart
            arena.removeFirst(a)
            fieldTable.removeFirst(f)
            let d = Int32(truncatingIfNeeded: a)
            for i in fieldTable.indices {
                fieldTable[i].nameStart &-= d
                fieldTable[i].valueStart &-= d
            }
            block.method.start &-= a
            block.scheme.start &-= a
            block.authority.start &-= a
            block.path.start &-= a
            block.arenaStart = 0
            block.fieldStart = 0
        } else {
            arena.removeAll(keepingCapacity: true)
            fieldTable.removeAll(keepingCapacity: true)
        }
    }

    func slice(_ s: H2Span) -> ArraySlice<UInt8> {
        guard s.count > 0, s.start >= 0, s.start &+ s.count <= arena.count else { return [] }
        return arena[s.start..<(s.start &+ s.count)]
    }

    func headers(_ r: H2BlockRef) -> H2Headers {
        guard r.fieldStart >= 0, r.fieldStart &+ r.fieldCount <= fieldTable.count else { return H2Headers() }
        return H2Headers(storage: arena, fields: fieldTable[r.fieldStart..<(r.fieldStart &+ r.fieldCount)])
    }

    private func emit(_ e: H2RawEvent) {
        events.append(e)
    }

    /// Removes the undelivered events of `stream` recorded since the current receive began.
    private func purge(stream: Int32) {
        var w = callStart
        for r in callStart..<events.count where events[r].stream != stream || isGoaway(events[r]) {
            events[w] = events[r]
            w &+= 1
        }
        events.removeLast(events.count &- w)
    }

    private func isGoaway(_ e: H2RawEvent) -> Bool {
        if case .goaway = e { return true }
        return false
    }

    // MARK: receive

    func receive(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> H2Receive {
        if let r = closeReason { return .close(r) }
        guard let session else { return .close(.internalError) }
        recycle()
        callNumber &+= 1
        callStart = events.count
        inReceive = true
        defer { inReceive = false }
        receiveNow = now
        var (safe, trip) = frameGuard.scan(bytes, now: now)
        if safe > 0, let base = bytes.baseAddress {
            let rv = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), safe)
            if rv < 0 {
                dead = rv == Int(NGHTTP2_ERR_NOMEM.rawValue) || rv == Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
                    || rv == Int(NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue)
                let reason: H2CloseReason
                switch rv {
                case Int(NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue): reason = .badPreface
                case Int(NGHTTP2_ERR_FLOODED.rawValue): reason = .protocolError
                case Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue), Int(NGHTTP2_ERR_NOMEM.rawValue): reason = .internalError
                default: reason = .protocolError
                }
                closeReason = reason
                if !dead {
                    _ = nghttp2_session_terminate_session(session, H2ErrorCode.protocolError)
                }
                return .close(reason)
            }
        }
        // nghttp2 queues RST_STREAM for a malformed request and closes the stream when it is sent.
        flushControlFrames()
        if trip == nil && provokedResetTrip { trip = .rapidReset }
        if let trip {
            dropNewRequests()
            closeReason = trip
            _ = nghttp2_session_terminate_session(session, H2ErrorCode.enhanceYourCalm)
            return .close(trip)
        }
        // nghttp2 reports a connection error only by queueing a GOAWAY: the flush above
        // serialised the control frames (they come before any DATA) to see it.
        if let r = closeReason { return .close(r) }
        return .ok
    }

    /// A bound tripped: the requests that arrived in this call are not delivered at all.
    private func dropNewRequests() {
        var drop = Set<Int32>()
        for i in callStart..<events.count {
            switch events[i] {
            case .request(let s, _, _, _, _, _, _, _), .tooLarge(let s): drop.insert(s)
            default: break
            }
        }
        if drop.isEmpty { return }
        var w = callStart
        for r in callStart..<events.count where !drop.contains(events[r].stream) || isGoaway(events[r]) {
            events[w] = events[r]
            w &+= 1
        }
        events.removeLast(events.count &- w)
        for s in drop { streams[s]?.known = false }
    }

    // MARK: callbacks

    private static func installCallbacks(_ cbs: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs) { _, frame, ud in
            guard let core = H2Core.core(ud), let frame else { return 0 }
            core.beginHeaders(frame.pointee.hd.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, namelen, value, valuelen, _, ud in
            guard let core = H2Core.core(ud), let frame else { return 0 }
            let n = UnsafeRawBufferPointer(start: name, count: namelen)
            let v = UnsafeRawBufferPointer(start: value, count: valuelen)
            core.header(frame.pointee.hd.stream_id, n, v)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, ud in
            guard let core = H2Core.core(ud), let frame else { return 0 }
            return core.frameReceived(frame)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, stream, data, len, ud in
            guard let core = H2Core.core(ud) else { return 0 }
            return core.dataChunk(stream, UnsafeRawBufferPointer(start: data, count: len))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, stream, code, ud in
            guard let core = H2Core.core(ud) else { return 0 }
            core.streamClosed(stream, code)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs) { _, frame, ud in
            guard let core = H2Core.core(ud), let frame else { return 0 }
            core.frameSent(frame)
            return 0
        }
    }

    /// nghttp2 found a connection error when it sends a GOAWAY with an error code we did not ask for.
    private func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {
        switch UInt32(truncatingIfNeeded: frame.pointee.hd.type) {
        case NGHTTP2_GOAWAY.rawValue:
            if frame.pointee.goaway.error_code != H2ErrorCode.noError && closeReason == nil && !localGoaway {
                closeReason = .protocolError
            }
        case NGHTTP2_DATA.rawValue:
            sentData = true
        default:
            break
        }
    }

    private func beginHeaders(_ stream: Int32) {
        block = Block()
        block.stream = stream
        block.active = true
        block.arenaStart = arena.count
        block.fieldStart = fieldTable.count
        if streams[stream] == nil, role == .server { streams[stream] = Stream() }
    }

    private func header(_ stream: Int32, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        guard block.active, block.stream == stream else { return }
        block.listSize = block.listSize &+ name.count &+ value.count &+ 32
        block.count &+= 1
        if block.listSize > maxHeaderListSize || block.count > maxHeaders { block.tooLarge = true }
        if block.tooLarge { return }
        if arena.count > Int(Int32.max) / 2 {
            block.tooLarge = true
            return
        }
        if name.first == 0x3A {
            let span = H2Span(start: arena.count, count: value.count)
            arena.append(contentsOf: value)
            if H2Bytes.equalsLowercase(name, ":method") { block.method = span }
            else if H2Bytes.equalsLowercase(name, ":scheme") { block.scheme = span }
            else if H2Bytes.equalsLowercase(name, ":authority") { block.authority = span }
            else if H2Bytes.equalsLowercase(name, ":path") { block.path = span }
            else if H2Bytes.equalsLowercase(name, ":status") {
                var st = 0
                if value.count == 3 {
                    for b in value {
                        guard b >= 0x30 && b <= 0x39 else { st = 0; break }
                        st = st &* 10 &+ Int(truncatingIfNeeded: b &- 0x30)
                    }
                }
                block.status = st
            }
            return
        }
        let ns = Int32(truncatingIfNeeded: arena.count)
        arena.append(contentsOf: name)
        let vs = Int32(truncatingIfNeeded: arena.count)
        arena.append(contentsOf: value)
        fieldTable.append(H2Field(
            nameStart: ns, nameCount: Int32(truncatingIfNeeded: name.count),
            valueStart: vs, valueCount: Int32(truncatingIfNeeded: value.count)))
    }

    private func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        let stream = hd.stream_id
        let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(truncatingIfNeeded: hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            headersReceived(stream, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            if endStream, let s = streams[stream], s.known, !s.tooLarge { emit(.endStream(stream: stream)) }
        case NGHTTP2_RST_STREAM.rawValue:
            streams[stream]?.peerReset = true
        case NGHTTP2_GOAWAY.rawValue:
            goawayReceived = true
            emit(.goaway(last: frame.pointee.goaway.last_stream_id, code: frame.pointee.goaway.error_code))
        default:
            break
        }
        return 0
    }

    private func headersReceived(_ stream: Int32, endStream: Bool) {
        guard block.active, block.stream == stream else { return }
        block.active = false
        let fields = H2BlockRef(fieldStart: block.fieldStart, fieldCount: fieldTable.count &- block.fieldStart)
        guard var s = streams[stream] else { return }
        defer { streams[stream] = s }
        if !s.headDelivered {
            switch role {
            case .server:
                s.headDelivered = true
                s.known = true
                s.deliveredCall = callNumber
                if block.tooLarge {
                    s.tooLarge = true
                    emit(.tooLarge(stream: stream))
                } else {
                    emit(.request(stream: stream, method: block.method, scheme: block.scheme,
                                  authority: block.authority, path: block.path, fields: fields,
                                  headerCount: block.count, endStream: endStream))
                }
            case .client:
                if block.tooLarge {
                    s.tooLarge = true
                    if let session {
                        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream,
                                                      H2ErrorCode.internalError)
                    }
                    return
                }
                // 1xx heads are dropped; HTTP/2 needs no 100 Continue.
                if block.status >= 100 && block.status < 200 { return }
                s.headDelivered = true
                emit(.response(stream: stream, status: block.status, fields: fields, endStream: endStream))
            }
            return
        }
        // Trailers.
        if s.tooLarge || !s.known { return }
        if block.tooLarge {
            if let session {
                _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream,
                                              H2ErrorCode.internalError)
            }
            return
        }
        emit(.trailers(stream: stream, fields: fields))
        if endStream { emit(.endStream(stream: stream)) }
    }

    private func dataChunk(_ stream: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        guard let session else { return 0 }
        guard var s = streams[stream], s.known, !s.tooLarge, s.headDelivered else {
            // Nobody will forward these bytes: give the window back now.
            _ = nghttp2_session_consume(session, stream, data.count)
            return 0
        }
        s.unconsumed &+= data.count
        streams[stream] = s
        // Merge with the previous DATA event of the stream when it ends where this one starts.
        if let last = events.last, events.count > callStart, case .data(let ls, let span) = last, ls == stream,
            span.start &+ span.count == arena.count
        {
            arena.append(contentsOf: data)
            events[events.count &- 1] = .data(stream: stream, bytes: H2Span(start: span.start, count: span.count &+ data.count))
            return 0
        }
        let span = H2Span(start: arena.count, count: data.count)
        arena.append(contentsOf: data)
        emit(.data(stream: stream, bytes: span))
        return 0
    }

    private func streamClosed(_ stream: Int32, _ code: UInt32) {
        guard var s = streams.removeValue(forKey: stream) else { return }
        if s.out.capacity > 0 && s.out.capacity <= Self.maxPooledQueueCapacity && queuePool.count < Self.maxPooledQueues {
            s.out.removeAll()
            queuePool.append(s.out)
        }
        if role == .client { activeStreams = max(0, activeStreams &- 1) }
        if s.unconsumed > 0, let session {
            _ = nghttp2_session_consume(session, stream, s.unconsumed)
        }
        if role == .server && inReceive && !s.peerReset && !s.localReset && !s.responded && code != H2ErrorCode.noError
            && frameGuard.noteProvokedReset(now: receiveNow)
        {
            provokedResetTrip = true
        }
        guard s.known else { return }
        let wasReset = s.peerReset || code != H2ErrorCode.noError
        if role == .server && wasReset && inReceive && s.deliveredCall == callNumber {
            // Opened and reset within one read (rapid reset): the caller never hears of it.
            purge(stream: stream)
            return
        }
        if wasReset { emit(.reset(stream: stream, code: code)) }
        emit(.closed(stream: stream))
    }

    // MARK: output

    /// Builds nghttp2_nv entries for `pseudo` then `headers` (names lower-cased, connection-specific
    /// fields left out) and calls `body` with them; nghttp2 copies them on submit.
    func withNV<R>(pseudo: [(StaticString, ArraySlice<UInt8>)], headers: H2Headers,
                   _ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
        var buf: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        spans.reserveCapacity(pseudo.count &+ headers.count)
        for (n, v) in pseudo {
            let ns = buf.count
            n.withUTF8Buffer { buf.append(contentsOf: $0) }
            let vs = buf.count
            buf.append(contentsOf: v)
            spans.append((ns, vs &- ns, vs, v.count))
        }
        for i in headers.indices {
            let f = headers[i]
            if f.name.isEmpty || f.name.first == 0x3A || H2Translate.isConnectionSpecific(f.name) { continue }
            let ns = buf.count
            for b in f.name { buf.append(H2Bytes.lower(b)) }
            let vs = buf.count
            buf.append(contentsOf: f.value)
            spans.append((ns, vs &- ns, vs, f.value.count))
        }
        if buf.isEmpty { buf.append(0) }
        return buf.withUnsafeMutableBufferPointer { bp in
            var empty = nghttp2_nv()
            // A non-empty buffer always has a base address.
            guard let base = bp.baseAddress else { return body(&empty, 0) }
            var nva = spans.map { s in
                nghttp2_nv(name: base + s.0, value: base + s.2, namelen: s.1, valuelen: s.3,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeMutableBufferPointer { nv in
                guard let p = nv.baseAddress else { return body(&empty, 0) }
                return body(p, nv.count)
            }
        }
    }

    /// A data provider pulling from the stream's queue.
    static func provider() -> nghttp2_data_provider {
        var p = nghttp2_data_provider()
        p.source.ptr = nil
        p.read_callback = { _, stream, buf, length, flags, _, ud in
            guard let core = H2Core.core(ud), let buf, let flags else {
                return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            }
            return core.readData(stream, buf, length, flags)
        }
        return p
    }

    /// Mutates the state of `stream` in place (no copy of its queue). `body` must not call
    /// nghttp2: its callbacks reach `streams` too (exclusive access).
    @inline(__always)
    private func withStream<R>(_ id: Int32, _ body: (inout Stream) -> R) -> R? {
        guard let i = streams.index(forKey: id) else { return nil }
        return body(&streams.values[i])
    }

    private enum ReadOutcome { case data(Int, H2Headers?), deferred, gone }

    private func readData(_ stream: Int32, _ buf: UnsafeMutablePointer<UInt8>, _ length: Int,
                          _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let outcome = withStream(stream) { s -> ReadOutcome in
            let n = s.out.pop(into: buf, max: length)
            if s.out.isEmpty && s.outEnded {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                if let t = s.trailers {
                    flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                    s.trailers = nil
                    return .data(n, t)
                }
                return .data(n, nil)
            }
            if n == 0 {
                s.deferred = true
                return .deferred
            }
            return .data(n, nil)
        } ?? .gone
        switch outcome {
        case .gone:
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .data(let n, let trailers):
            if let trailers, let session {
                let rv = withNV(pseudo: [], headers: trailers) { nv, c in nghttp2_submit_trailer(session, stream, nv, c) }
                if rv != 0 { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
            }
            return n
        }
    }

    func sendData(stream: Int32, _ bytes: UnsafeRawBufferPointer, endStream: Bool) -> Bool {
        guard let session, !dead else { return false }
        let resume = withStream(stream) { s -> Bool? in
            guard s.hasProvider, !s.outEnded else { return nil }
            s.out.append(bytes)
            if endStream { s.outEnded = true }
            let r = s.deferred
            s.deferred = false
            return r
        } ?? nil
        guard let resume else { return false }
        if resume { _ = nghttp2_session_resume_data(session, stream) }
        return true
    }

    func sendTrailers(stream: Int32, _ headers: H2Headers) -> Bool {
        guard let session, !dead, var s = streams[stream], s.hasProvider, !s.outEnded else { return false }
        s.outEnded = true
        s.trailers = headers
        let resume = s.deferred
        s.deferred = false
        streams[stream] = s
        if resume { _ = nghttp2_session_resume_data(session, stream) }
        return true
    }

    func bufferedData(stream: Int32) -> Int { streams[stream]?.out.count ?? 0 }

    func consume(stream: Int32, bytes: Int) {
        guard let session, !dead, bytes > 0, var s = streams[stream] else { return }
        let n = min(bytes, s.unconsumed)
        if n <= 0 { return }
        s.unconsumed &-= n
        streams[stream] = s
        _ = nghttp2_session_consume(session, stream, n)
    }

    func reset(stream: Int32, code: UInt32) {
        guard let session, !dead else { return }
        streams[stream]?.localReset = true
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, code)
    }

    func goaway(code: UInt32, lastStreamID: Int32?) {
        guard let session, !dead else { return }
        localGoaway = true
        let last = lastStreamID ?? nghttp2_session_get_last_proc_stream_id(session)
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, code, nil, 0)
    }

    func shutdownNotice() {
        guard let session, !dead else { return }
        _ = nghttp2_submit_shutdown_notice(session)
    }

    func noteSubmitted(_ stream: Int32, hasProvider: Bool) {
        var s = Stream()
        s.known = true
        s.hasProvider = hasProvider
        if hasProvider, let q = queuePool.popLast() { s.out = q }
        streams[stream] = s
        activeStreams &+= 1
    }

    func noteResponded(_ stream: Int32, hasProvider: Bool) {
        guard var s = streams[stream] else { return }
        s.hasProvider = hasProvider
        s.responded = true
        if hasProvider && s.out.capacity == 0, let q = queuePool.popLast() { s.out = q }
        streams[stream] = s
    }

    /// Serialises pending frames into `out` (leftover bytes of a frame are kept for the next call).
    func produceOutput(into out: UnsafeMutableRawPointer, capacity: Int) -> Int {
        var written = 0
        if pendingHead < pendingOut.count {
            let n = min(capacity, pendingOut.count &- pendingHead)
            pendingOut.withUnsafeBytes { src in
                if let b = src.baseAddress { out.copyMemory(from: b + pendingHead, byteCount: n) }
            }
            pendingHead &+= n
            written = n
            if pendingHead < pendingOut.count { return written }
            pendingOut.removeAll(keepingCapacity: true)
            pendingHead = 0
        }
        guard let session, !dead else { return written }
        while written < capacity {
            var ptr: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &ptr)
            if n < 0 {
                dead = true
                if closeReason == nil { closeReason = .internalError }
                break
            }
            guard n > 0, let ptr else { break }
            let take = min(n, capacity &- written)
            (out + written).copyMemory(from: ptr, byteCount: take)
            written &+= take
            if take < n {
                pendingOut.append(contentsOf: UnsafeRawBufferPointer(start: ptr + take, count: n &- take))
                break
            }
        }
        return written
    }

    /// Serialises what nghttp2 queued during `receive` into `pendingOut`, stopping after the first
    /// DATA frame or 64 KiB; `produceOutput` hands it out first.
    private func flushControlFrames() {
        guard let session, !dead else { return }
        sentData = false
        while nghttp2_session_want_write(session) != 0 && pendingOut.count &- pendingHead < 65536 && !sentData {
            var ptr: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &ptr)
            if n < 0 {
                dead = true
                if closeReason == nil { closeReason = .internalError }
                return
            }
            guard n > 0, let ptr else { return }
            pendingOut.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: n))
        }
    }

    var wantsWrite: Bool {
        if pendingHead < pendingOut.count { return true }
        guard let session, !dead else { return false }
        return nghttp2_session_want_write(session) != 0
    }

    var wantsRead: Bool {
        guard let session, !dead, closeReason == nil else { return false }
        return nghttp2_session_want_read(session) != 0
    }

    var isFinished: Bool {
        if pendingHead < pendingOut.count { return false }
        guard let session, !dead else { return true }
        return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    func remoteSetting(_ id: nghttp2_settings_id) -> UInt32 {
        guard let session else { return 0 }
        return nghttp2_session_get_remote_settings(session, id)
    }
}
