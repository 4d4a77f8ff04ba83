internal import CNGHTTP2

/// The inbound side of `H2Core`: nghttp2 callbacks that record events while `receive` runs.
extension H2Core {
    static func installCallbacks(_ cbs: OpaquePointer) {
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
    func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {
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

    func beginHeaders(_ stream: Int32) {
        block = Block()
        block.stream = stream
        block.active = true
        block.arenaStart = arena.count
        block.fieldStart = fieldTable.count
        if streams[stream] == nil, role == .server { streams[stream] = Stream() }
    }

    func header(_ stream: Int32, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        guard block.active, block.stream == stream else { return }
        block.listSize = block.listSize &+ name.count &+ value.count &+ 32
        block.count &+= 1
        // Like HTTP/1's 100-header limit, the count is of regular fields; the size covers all.
        if name.first != 0x3A { block.regular &+= 1 }
        if block.listSize > maxHeaderListSize || block.regular > maxHeaders { block.tooLarge = true }
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

    func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
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
        case NGHTTP2_SETTINGS.rawValue:
            if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { remoteSettingsReceived = true }
        case NGHTTP2_GOAWAY.rawValue:
            goawayReceived = true
            emit(.goaway(last: frame.pointee.goaway.last_stream_id, code: frame.pointee.goaway.error_code))
        default:
            break
        }
        return 0
    }

    func headersReceived(_ stream: Int32, endStream: Bool) {
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

    func dataChunk(_ stream: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
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

    func streamClosed(_ stream: Int32, _ code: UInt32) {
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
}
