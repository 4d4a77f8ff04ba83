import SluiceCore
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// Access-log records: captured on the connection while the request is handled, formatted
/// into the worker's ring when it ends, written by the log thread.
extension Worker {
    /// Remembers what the log line needs from the request head before the head's bytes go.
    func captureForLog(_ c: HTTPConnection, _ head: HTTPRequestHead) {
        c.logPending = true
        c.ownAnswer = false
        c.logVerdict = head.verdict
        c.logStatus = 0
        c.logTarget = -1
        c.logAction = -1
        c.bytesFromClient = UInt64(head.headLength)
        c.bytesToClient = 0
        c.targetStarted = 0
        guard c.logFd >= 0 else { return }
        let src = c.input.bytes
        let method = UnsafeRawBufferPointer(rebasing: src[Int(head.method.start)..<min(head.method.end, Int(head.method.start) + 16)])
        let pathEnd = min(head.target.end, Int(head.target.start) + HTTPConnection.logScratchSize - 16)
        let path = UnsafeRawBufferPointer(rebasing: src[Int(head.target.start)..<pathEnd])
        c.logScratch.copyMemory(from: method.baseAddress!, byteCount: method.count)
        c.logScratch.advanced(by: 16).copyMemory(from: path.baseAddress!, byteCount: path.count)
        c.logMethodLength = method.count
        c.logPathLength = path.count
    }

    /// Writes the finished request's line, if this listener logs.
    func logRequest(_ c: HTTPConnection) {
        let fd = c.logFd
        guard c.logPending else { return }
        c.logPending = false
        let p = plan(of: c)
        let l = p.listeners[c.listener]
        // Counters first: every finished request counts, logged or not.
        if l.statsId >= 0 {
            let group = c.logTarget >= 0 && c.group < p.groups.count ? p.groups[c.group].statsId : -1
            stats.request(listener: l.statsId, group: group, status: c.logStatus, nanos: now &- c.requestStarted)
            stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.bytesIn), c.bytesFromClient)
            stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.bytesOut), c.bytesToClient)
            stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.desync + Int(c.logVerdict.klass.rawValue)))
            if c.logTarget < 0 || c.ownAnswer { stats.ownError(listener: l.statsId, status: c.logStatus) }
        }
        guard fd >= 0, let slot = accessLog?.reserve() else { return }
        var w = LineWriter(slot)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let wallMillis = UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
        w.raw("{\"time_ms\":")
        w.int(wallMillis - (now - c.requestStarted) / 1_000_000)
        w.raw(",\"client\":")
        c.clientAddress.withHostText { w.string($0) }
        w.raw(",\"client_port\":")
        w.int(UInt64(c.clientAddress.port))
        w.raw(",\"listener\":")
        w.string(l.name)
        w.raw(",\"rule\":")
        if c.logAction < 0 || c.logAction >= l.rulePriorities.count {
            w.raw("null")
        } else if c.logAction == l.defaultAction {
            w.raw("\"default\"")
        } else {
            w.int(UInt64(l.rulePriorities[c.logAction]))
        }
        w.raw(",\"group\":")
        if c.logTarget >= 0 && c.group < p.groups.count && c.logTarget < p.groups[c.group].targets.count {
            w.string(p.groups[c.group].name)
            w.raw(",\"target\":")
            w.string(p.groups[c.group].targets[c.logTarget].key)
        } else {
            w.raw("null,\"target\":null")
        }
        w.raw(",\"method\":")
        w.string(UnsafeRawBufferPointer(start: c.logScratch, count: c.logMethodLength))
        w.raw(",\"path\":")
        w.string(UnsafeRawBufferPointer(start: c.logScratch + 16, count: c.logPathLength))
        w.raw(",\"status\":")
        w.int(UInt64(c.logStatus))
        w.raw(",\"bytes_in\":")
        w.int(c.bytesFromClient)
        w.raw(",\"bytes_out\":")
        w.int(c.bytesToClient)
        w.raw(",\"duration_ms\":")
        writeMillis(&w, now - c.requestStarted)
        w.raw(",\"target_duration_ms\":")
        if c.targetStarted != 0 { writeMillis(&w, now - c.targetStarted) } else { w.raw("null") }
        w.raw(",\"desync_class\":")
        switch c.logVerdict.klass {
        case .compliant: w.raw("\"compliant\"")
        case .acceptable: w.raw("\"acceptable\"")
        case .ambiguous: w.raw("\"ambiguous\"")
        case .severe: w.raw("\"severe\"")
        }
        w.raw(",\"desync_reason\":")
        if c.logVerdict.reason == .none { w.raw("null") } else { w.string(c.logVerdict.reason.code) }
        w.raw("}")
        w.finishLine()
        accessLog?.commit(length: w.count, fd: fd)
    }

    private func writeMillis(_ w: inout LineWriter, _ nanos: UInt64) {
        w.int(nanos / 1_000_000)
        w.byte(UInt8(ascii: "."))
        let frac = (nanos / 1_000) % 1_000
        w.byte(UInt8(ascii: "0") + UInt8(frac / 100))
        w.byte(UInt8(ascii: "0") + UInt8(frac / 10 % 10))
        w.byte(UInt8(ascii: "0") + UInt8(frac % 10))
    }
}
