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
        var regular = 0
        var tooLarge = false
        var method = H2Span(start: 0, count: 0)
        var scheme = H2Span(start: 0, count: 0)
        var authority = H2Span(start: 0, count: 0)
        var path = H2Span(start: 0, count: 0)
        var status = 0
    }

    let role: Role
    var session: OpaquePointer?
    var frameGuard: H2FrameGuard
    let maxHeaderListSize: Int
    let maxHeaders: Int

    var events: [H2RawEvent] = []
    var readIndex = 0
    var arena: [UInt8] = []
    var fieldTable: [H2Field] = []

    var streams: [Int32: Stream] = [:]
    var block = Block()
    var callNumber: UInt64 = 0
    var callStart = 0
    var inReceive = false
    /// A DATA frame was serialised (stops the eager flush after `receive`).
    var sentData = false
    /// Streams nghttp2 reset on the peer's behalf crossed the reset bound during this receive.
    var provokedResetTrip = false
    var receiveNow: UInt64 = 0
    /// The caller submitted a GOAWAY itself.
    var localGoaway = false
    var closeReason: H2CloseReason?
    /// nghttp2 returned a fatal error: the session may not be used any more.
    var dead = false
    var pendingOut: [UInt8] = []
    var pendingHead = 0
    /// Client streams open (submitted, not closed).
    var activeStreams = 0
    /// Emptied outbound queues of closed streams, reused by new ones (their storage stays allocated).
    var queuePool: [H2ByteQueue] = []
    static let maxPooledQueues = 32
    static let maxPooledQueueCapacity = 1 << 20
    /// The peer's first SETTINGS arrived.
    var remoteSettingsReceived = false
    /// The peer sent GOAWAY: open no new stream.
    var goawayReceived = false
    /// Scratch for `withNV`: the bytes and entries of a header list being submitted (kept, grown).
    var nvBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 4096)
    var nvBytesCap = 4096
    var nvEntries = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: 64)
    var nvCap = 64

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
        nvBytes.deallocate()
        nvEntries.deallocate()
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

    func emit(_ e: H2RawEvent) {
        events.append(e)
    }

    /// Removes the undelivered events of `stream` recorded since the current receive began.
    func purge(stream: Int32) {
        var w = callStart
        for r in callStart..<events.count where events[r].stream != stream || isGoaway(events[r]) {
            events[w] = events[r]
            w &+= 1
        }
        events.removeLast(events.count &- w)
    }

    func isGoaway(_ e: H2RawEvent) -> Bool {
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
    func dropNewRequests() {
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
}
