internal import CNGHTTP2

/// The outbound side of `H2Core`: header lists for nghttp2, per-stream data providers, flow
/// control reports and the serialisation of frames into the caller's buffer.
extension H2Core {
    /// Builds nghttp2_nv entries for `pseudo`, then `:status` (when `status` >= 0), then `headers`
    /// (names lower-cased, connection-specific fields left out) and calls `body` with them;
    /// nghttp2 copies them on submit. The entries and their bytes live in buffers the core keeps
    /// (grown when a list needs more), so a response head allocates nothing here.
    func withNV<R>(pseudo: [(StaticString, ArraySlice<UInt8>)] = [], status: Int = -1, headers: H2Headers,
                   _ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
        var need = 4
        for (n, v) in pseudo { need &+= n.utf8CodeUnitCount &+ v.count }
        if status >= 0 { need &+= 7 &+ 20 }
        for f in headers.fields {
            need &+= Int(truncatingIfNeeded: f.nameCount) &+ Int(truncatingIfNeeded: f.valueCount)
        }
        let entries = pseudo.count &+ 1 &+ headers.fields.count
        if need > nvBytesCap {
            nvBytes.deallocate()
            nvBytesCap = max(need, nvBytesCap &* 2)
            nvBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: nvBytesCap)
        }
        if entries > nvCap {
            nvEntries.deallocate()
            nvCap = max(entries, nvCap &* 2)
            nvEntries = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: nvCap)
        }
        let buf = nvBytes
        let nva = nvEntries
        var used = 0
        var n = 0
        let flags = UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
        for (name, v) in pseudo {
            let ns = used
            name.withUTF8Buffer { src in
                if let b = src.baseAddress { (buf + used).update(from: b, count: src.count) }
                used &+= src.count
            }
            let vs = used
            v.withUnsafeBufferPointer { src in
                if let b = src.baseAddress { (buf + used).update(from: b, count: src.count) }
                used &+= src.count
            }
            nva[n] = nghttp2_nv(name: buf + ns, value: buf + vs, namelen: vs &- ns, valuelen: used &- vs, flags: flags)
            n &+= 1
        }
        if status >= 0 {
            let ns = used
            for b in ":status".utf8 {
                buf[used] = b
                used &+= 1
            }
            let vs = used
            var digits = 0
            var v = status
            repeat {
                digits &+= 1
                v /= 10
            } while v > 0 && digits < 20
            v = status
            var i = digits
            while i > 0 {
                i &-= 1
                buf[vs &+ i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
            }
            used &+= digits
            nva[n] = nghttp2_nv(name: buf + ns, value: buf + vs, namelen: vs &- ns, valuelen: digits, flags: flags)
            n &+= 1
        }
        headers.storage.withUnsafeBufferPointer { st in
            guard let sb = st.baseAddress else { return }
            for f in headers.fields {
                let nStart = Int(truncatingIfNeeded: f.nameStart)
                let nCount = Int(truncatingIfNeeded: f.nameCount)
                let vStart = Int(truncatingIfNeeded: f.valueStart)
                let vCount = Int(truncatingIfNeeded: f.valueCount)
                guard nCount > 0, nStart >= 0, vStart >= 0, nStart &+ nCount <= st.count, vStart &+ vCount <= st.count
                else { continue }
                let name = UnsafeBufferPointer(start: sb + nStart, count: nCount)
                if name[0] == 0x3A || H2Translate.isConnectionSpecific(name) { continue }
                let ns = used
                for b in name {
                    buf[used] = H2Bytes.lower(b)
                    used &+= 1
                }
                let vs = used
                if vCount > 0 { (buf + used).update(from: sb + vStart, count: vCount) }
                used &+= vCount
                nva[n] = nghttp2_nv(name: buf + ns, value: buf + vs, namelen: nCount, valuelen: vCount, flags: flags)
                n &+= 1
            }
        }
        return body(nva, n)
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
    func withStream<R>(_ id: Int32, _ body: (inout Stream) -> R) -> R? {
        guard let i = streams.index(forKey: id) else { return nil }
        return body(&streams.values[i])
    }

    enum ReadOutcome { case data(Int, H2Headers?), deferred, gone }

    func readData(_ stream: Int32, _ buf: UnsafeMutablePointer<UInt8>, _ length: Int,
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
    func flushControlFrames() {
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
