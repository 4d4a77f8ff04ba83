import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// How an L4 connection or UDP flow ended, as its access-log line says (`"end"`).
enum L4End: UInt8 {
    /// Both sides finished (FIN each way), or the client left before a target was reached
    /// (while connecting or queued), or Sluice closed it (stop, reload, deregistration).
    case closed
    /// A socket error on either side (a reset, mostly).
    case error
    /// No byte either way for `idle_timeout` (a UDP flow: no datagram).
    case idleTimeout
    /// Targets were tried and none could be connected (refused, timed out, out of sockets).
    case connectFailed
    /// The group had no target to try (none registered or healthy, all full with no queue, or
    /// the group left the configuration); a UDP flow whose target left and found no other.
    case noTarget
    case surgeQueueTimeout
    case surgeQueueFull
    case proxyHeaderInvalid
    case proxyHeaderTimeout
    case tlsHandshakeFailed

    var text: StaticString {
        switch self {
        case .closed: "closed"
        case .error: "error"
        case .idleTimeout: "idle_timeout"
        case .connectFailed: "connect_failed"
        case .noTarget: "no_target"
        case .surgeQueueTimeout: "surge_queue_timeout"
        case .surgeQueueFull: "surge_queue_full"
        case .proxyHeaderInvalid: "proxy_header_invalid"
        case .proxyHeaderTimeout: "proxy_header_timeout"
        case .tlsHandshakeFailed: "tls_handshake_failed"
        }
    }
}

/// Access-log lines of L4 listeners (SPEC §8): one JSON object per TCP connection (tcp, tls,
/// the TCP side of tcp_udp) and per UDP flow, when it ends, into the worker's ring like the
/// L7 lines (same keys where they overlap). Nothing happens for a listener that does not log.
extension Worker {
    /// The line of connection `c`, which is closing; `target` is the target it reached (-1:
    /// none), read before the target socket was dropped.
    func logConnection(_ c: TCPConnection, target: Int) {
        guard c.logFd >= 0, let p = c.plan, c.listener < p.listeners.count, let slot = accessLog?.reserve() else { return }
        let l = p.listeners[c.listener]
        let header = UInt64(truncatingIfNeeded: c.proxyHeaderBytes)
        var w = LineWriter(slot)
        writeL4Line(&w, plan: p, listener: l, proto: l.tls == nil ? "tcp" : "tls", client: c.clientAddress,
                    group: c.group, target: target, bytesIn: c.up.bytes > header ? c.up.bytes &- header : 0,
                    bytesOut: c.down.bytes, openedAt: c.openedAt, end: c.end)
        accessLog?.commit(length: w.count, fd: c.logFd)
    }

    /// The line of UDP flow `f`, which is closing; `p` is the Plan its indices belong to.
    func logFlow(_ f: UDPFlow, plan p: Plan, end: L4End) {
        guard f.logFd >= 0, f.listener < p.listeners.count, let slot = accessLog?.reserve() else { return }
        var w = LineWriter(slot)
        writeL4Line(&w, plan: p, listener: p.listeners[f.listener], proto: "udp", client: f.client, group: f.group,
                    target: f.target, bytesIn: f.bytesIn, bytesOut: f.bytesOut, openedAt: f.openedAt, end: end)
        accessLog?.commit(length: w.count, fd: f.logFd)
    }

    private func writeL4Line(_ w: inout LineWriter, plan p: Plan, listener l: Plan.ListenerPlan, proto: StaticString,
                             client: SocketAddress, group: Int, target: Int, bytesIn: UInt64, bytesOut: UInt64,
                             openedAt: UInt64, end: L4End) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let wallMillis = UInt64(clamping: ts.tv_sec) &* 1000 &+ UInt64(clamping: ts.tv_nsec) / 1_000_000
        let duration = now > openedAt ? now &- openedAt : 0
        w.raw("{\"time_ms\":")
        w.int(wallMillis > duration / 1_000_000 ? wallMillis &- duration / 1_000_000 : 0)
        w.raw(",\"client\":")
        client.withHostText { w.string($0) }
        w.raw(",\"client_port\":")
        w.int(UInt64(truncatingIfNeeded: client.port))
        w.raw(",\"listener\":")
        w.string(l.name)
        w.raw(",\"protocol\":\"")
        w.raw(proto)
        w.raw("\",\"group\":")
        if group >= 0 && group < p.groups.count {
            w.string(p.groups[group].name)
            w.raw(",\"target\":")
            if target >= 0 && target < p.groups[group].targets.count {
                w.string(p.groups[group].targets[target].key)
            } else {
                w.raw("null")
            }
        } else {
            w.raw("null,\"target\":null")
        }
        w.raw(",\"bytes_in\":")
        w.int(bytesIn)
        w.raw(",\"bytes_out\":")
        w.int(bytesOut)
        w.raw(",\"duration_ms\":")
        writeMillis(&w, duration)
        w.raw(",\"end\":\"")
        w.raw(end.text)
        w.raw("\"}")
        w.finishLine()
    }
}
