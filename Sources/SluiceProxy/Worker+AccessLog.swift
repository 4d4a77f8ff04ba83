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
        beginLogRecord(c, head, bytesIn: UInt64(head.headLength))
    }

    /// The same for a request rejected before its head was complete (parse error, limits,
    /// header timeout): what the parser made out so far — method and target once the request
    /// line was read, the desync class and reason raised so far.
    func captureRejectedForLog(_ c: HTTPConnection) {
        beginLogRecord(c, c.parser.head, bytesIn: UInt64(c.input.count))
    }

    private func beginLogRecord(_ c: HTTPConnection, _ head: HTTPRequestHead, bytesIn: UInt64) {
        c.exchange.ownAnswer = false
        c.exchange.forwarded = false
        c.exchange.logVerdict = head.verdict
        c.exchange.logStatus = 0
        c.exchange.logTarget = -1
        c.exchange.logAction = -1
        c.exchange.bytesFromClient = bytesIn
        c.exchange.bytesToClient = 0
        c.exchange.targetStarted = 0
        c.exchange.logMethodLength = 0
        c.exchange.logPathLength = 0
        guard c.logFd != nil else { return }
        let src = c.input.bytes
        // Ranges of a partial head may be unset (empty) but never lie beyond what was parsed.
        guard head.method.end <= src.count, head.target.end <= src.count else { return }
        let method = UnsafeRawBufferPointer(rebasing: src[Int(head.method.start)..<min(head.method.end, Int(head.method.start) + 16)])
        let pathEnd = min(head.target.end, Int(head.target.start) + HTTPConnection.logScratchSize - 16)
        let path = UnsafeRawBufferPointer(rebasing: src[Int(head.target.start)..<pathEnd])
        if method.count > 0 { c.logScratch.copyMemory(from: method.baseAddress!, byteCount: method.count) }
        if path.count > 0 { c.logScratch.advanced(by: 16).copyMemory(from: path.baseAddress!, byteCount: path.count) }
        c.exchange.logMethodLength = method.count
        c.exchange.logPathLength = path.count
    }

    /// Writes the finished request's line, if this listener logs.
    func logRequest(_ c: HTTPConnection) {
        guard c.exchange.machine.hasRecord else { return }
        c.exchange.machine.recordWritten()
        let p = plan(of: c)
        let l = p.listeners[c.listener]
        // Counters first: every finished request counts, logged or not.
        if l.statsId >= 0 {
            // The group it was forwarded to, even when Sluice answered for it (502/503/504);
            // none for Sluice's answers before forwarding (rules' respond/redirect, 4xx).
            let group = c.exchange.forwarded && c.exchange.group < p.groups.count ? p.groups[c.exchange.group].statsId : -1
            stats.request(listener: l.statsId, group: group, status: c.exchange.logStatus, nanos: now &- c.exchange.machine.requestStarted)
            stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.bytesIn), c.exchange.bytesFromClient)
            stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.bytesOut), c.exchange.bytesToClient)
            stats.add(StatsBlock.listenerSlot(l.statsId, StatsBlock.desync + Int(c.exchange.logVerdict.klass.rawValue)))
            if c.exchange.logTarget < 0 || c.exchange.ownAnswer { stats.ownError(listener: l.statsId, status: c.exchange.logStatus) }
        }
        guard let fd = c.logFd, let slot = accessLog?.reserve() else { return }
        var w = LineWriter(slot)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let wallMillis = UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
        w.raw("{\"time_ms\":")
        w.int(wallMillis - (now - c.exchange.machine.requestStarted) / 1_000_000)
        w.raw(",\"client\":")
        c.clientAddress.withHostText { w.string($0) }
        w.raw(",\"client_port\":")
        w.int(UInt64(c.clientAddress.port))
        w.raw(",\"listener\":")
        w.string(l.name)
        w.raw(",\"rule\":")
        if c.exchange.logAction < 0 || c.exchange.logAction >= l.rulePriorities.count {
            w.raw("null")
        } else if c.exchange.logAction == l.defaultAction {
            w.raw("\"default\"")
        } else {
            w.int(UInt64(l.rulePriorities[c.exchange.logAction]))
        }
        w.raw(",\"group\":")
        if c.exchange.logTarget >= 0 && c.exchange.group < p.groups.count && c.exchange.logTarget < p.groups[c.exchange.group].targets.count {
            w.string(p.groups[c.exchange.group].name)
            w.raw(",\"target\":")
            w.string(p.groups[c.exchange.group].targets[c.exchange.logTarget].key)
        } else {
            w.raw("null,\"target\":null")
        }
        w.raw(",\"method\":")
        w.string(UnsafeRawBufferPointer(start: c.logScratch, count: c.exchange.logMethodLength))
        w.raw(",\"path\":")
        w.string(UnsafeRawBufferPointer(start: c.logScratch + 16, count: c.exchange.logPathLength))
        w.raw(",\"status\":")
        w.int(UInt64(c.exchange.logStatus))
        w.raw(",\"bytes_in\":")
        w.int(c.exchange.bytesFromClient)
        w.raw(",\"bytes_out\":")
        w.int(c.exchange.bytesToClient)
        w.raw(",\"duration_ms\":")
        writeMillis(&w, now - c.exchange.machine.requestStarted)
        w.raw(",\"target_duration_ms\":")
        if c.exchange.targetStarted != 0 { writeMillis(&w, now - c.exchange.targetStarted) } else { w.raw("null") }
        w.raw(",\"desync_class\":")
        switch c.exchange.logVerdict.klass {
        case .compliant: w.raw("\"compliant\"")
        case .acceptable: w.raw("\"acceptable\"")
        case .ambiguous: w.raw("\"ambiguous\"")
        case .severe: w.raw("\"severe\"")
        }
        w.raw(",\"desync_reason\":")
        if c.exchange.logVerdict.reason == .none { w.raw("null") } else { w.string(c.exchange.logVerdict.reason.code) }
        w.raw("}")
        w.finishLine()
        accessLog?.commit(length: w.count, fd: fd)
    }

    func writeMillis(_ w: inout LineWriter, _ nanos: UInt64) {
        w.int(nanos / 1_000_000)
        w.byte(UInt8(ascii: "."))
        let frac = (nanos / 1_000) % 1_000
        w.byte(UInt8(ascii: "0") + UInt8(frac / 100))
        w.byte(UInt8(ascii: "0") + UInt8(frac / 10 % 10))
        w.byte(UInt8(ascii: "0") + UInt8(frac % 10))
    }
}
