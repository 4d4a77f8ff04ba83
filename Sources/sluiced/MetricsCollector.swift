import SluiceControl
import SluiceControlPlane
import SluiceProxy
import SluiceHTTP2

/// Prometheus text (SPEC §9): per-worker counters summed at scrape time, plus the control
/// plane's view of targets.
enum MetricsCollector {
    static func text(runtime: Runtime, control: ControlPlane) -> String {
        var w = MetricsWriter()
        let ids = control.statsIds
        let blocks = runtime.stats
        func sum(_ f: (StatsBlock) -> UInt64) -> UInt64 { blocks.reduce(0) { $0 &+ f($1) } }
        let listeners = ids.listeners.sorted { $0.value < $1.value }
        let groups = ids.groups.sorted { $0.value < $1.value }
        let config = runtime.planStore.plan.config
        let tlsListeners = Set(config.listeners.filter { $0.tls != nil }.map(\.name))
        let udpListeners = Set(config.listeners.filter { $0.udp != nil }.map(\.name))
        for (name, l) in listeners {
            let total = sum { $0.connectionsTotal(listener: l) }
            let closed = sum { $0.connectionsClosed(listener: l) }
            w.gauge("sluice_connections_active", help: "Open client connections.", labels: [("listener", name)],
                    value: Int(total &- min(closed, total)))
        }
        for (name, l) in listeners {
            w.counter("sluice_connections_total", help: "Client connections accepted.", labels: [("listener", name)],
                      value: sum { $0.connectionsTotal(listener: l) })
        }
        // Every answered request, Sluice's own answers included (group "" when none served it).
        let groupColumns: [(name: String, id: Int?)] = [("", nil)] + groups.map { ($0.key, $0.value) }
        for (name, l) in listeners {
            for (group, g) in groupColumns {
                for code in StatsBlock.statusCodes {
                    let v = sum { $0.requests(listener: l, group: g, code: code) }
                    if v > 0 {
                        w.counter("sluice_requests_total", help: "Requests answered, by exact status.",
                                  labels: [("listener", name), ("group", group), ("code", String(code))], value: v)
                    }
                }
                let other = sum { $0.requests(listener: l, group: g, code: 0) }
                if other > 0 {
                    w.counter("sluice_requests_total", help: "Requests answered, by exact status.",
                              labels: [("listener", name), ("group", group), ("code", "other")], value: other)
                }
            }
        }
        for (name, l) in listeners {
            var buckets: [(le: Double, count: UInt64)] = []
            var running: UInt64 = 0
            var sumMicros: UInt64 = 0
            var count: UInt64 = 0
            for b in blocks {
                let d = b.durations(listener: l)
                sumMicros &+= d.sumMicros
                count &+= d.count
            }
            for (i, le) in StatsBlock.buckets.enumerated() {
                running &+= sum { $0.durations(listener: l).buckets[i] }
                buckets.append((le: le, count: running))
            }
            w.histogram("sluice_request_duration_seconds", help: "Time from a request's first byte to its answer.",
                        labels: [("listener", name)], buckets: buckets, sum: Double(sumMicros) / 1e6, count: count)
        }
        for (name, l) in listeners {
            w.counter("sluice_bytes_total", help: "Bytes proxied.", labels: [("listener", name), ("direction", "in")],
                      value: sum { $0.bytes(listener: l).incoming })
            w.counter("sluice_bytes_total", help: "Bytes proxied.", labels: [("listener", name), ("direction", "out")],
                      value: sum { $0.bytes(listener: l).outgoing })
        }
        let views = control.groupViews()
        let states = ["initial", "healthy", "unhealthy", "draining", "unused", "unavailable"]
        for g in views {
            for t in g.targets {
                for s in states {
                    w.gauge("sluice_target_health", help: "1 for the target's current state.",
                            labels: [("group", g.name), ("target", t.address), ("zone", t.zone), ("state", s)],
                            value: t.state == s ? 1 : 0)
                }
            }
        }
        for g in views {
            for t in g.targets {
                w.gauge("sluice_target_requests_in_flight", help: "Requests (http) or connections (tcp) in flight.",
                        labels: [("group", g.name), ("target", t.address)], value: t.inFlight)
            }
        }
        for g in views {
            let sent = control.sentTotal(group: g.name)
            let n = max(1, g.targets.filter { $0.state != "draining" }.count)
            w.gauge("sluice_requests_per_target", help: "Requests sent to the group divided by its targets (rate() it).",
                    labels: [("group", g.name)], value: Double(sent) / Double(n))
        }
        let classes = ["compliant", "acceptable", "ambiguous", "severe"]
        for (name, l) in listeners {
            for (i, c) in classes.enumerated() {
                w.counter("sluice_desync_total", help: "Requests by desync classification.",
                          labels: [("listener", name), ("class", c)], value: sum { $0.desync(listener: l, klass: i) })
            }
        }
        for g in views {
            w.gauge("sluice_fail_open", help: "1 while the group routes to all targets because too few are healthy.",
                    labels: [("group", g.name)], value: g.failOpen ? 1 : 0)
        }
        for (name, l) in listeners {
            for (i, status) in StatsBlock.errorStatuses.enumerated() {
                let v = sum { $0.ownErrors(listener: l, index: i) }
                if v > 0 {
                    w.counter("sluice_errors_total", help: "Errors by kind: Sluice's own answers by status, HTTP/2 connections closed for abuse (h2_*).",
                              labels: [("listener", name), ("kind", "\(status)")], value: v)
                }
            }
        }
        // HTTP/2 connections ended by an abuse bound or a protocol error (SPEC §3), by reason.
        for (name, l) in listeners {
            for (i, reason) in H2CloseReason.allCases.enumerated() where i < StatsBlock.h2CloseSlots {
                let v = sum { $0.h2Closes(listener: l, reason: i) }
                if v > 0 {
                    w.counter("sluice_errors_total", help: "Errors by kind: Sluice's own answers by status, HTTP/2 connections closed for abuse (h2_*).",
                              labels: [("listener", name), ("kind", "h2_" + reason.rawValue)], value: v)
                }
            }
        }
        // accept_proxy_protocol: connections closed for a missing, malformed or oversized PROXY
        // header, or one not complete in time.
        for (name, l) in listeners {
            let invalid = sum { $0.proxyHeaders(listener: l).invalid }
            let timeout = sum { $0.proxyHeaders(listener: l).timeout }
            for (kind, v) in [("proxy_header_invalid", invalid), ("proxy_header_timeout", timeout)] where v > 0 {
                w.counter("sluice_errors_total", help: "Errors by kind: Sluice's own answers by status, HTTP/2 connections closed for abuse (h2_*).",
                          labels: [("listener", name), ("kind", kind)], value: v)
            }
        }
        udpErrors(&w, listeners: listeners, udp: udpListeners, sum: sum)
        surgeErrors(&w, listeners: listeners, sum: sum)
        udpDatagrams(&w, listeners: listeners, udp: udpListeners, sum: sum)
        for (name, l) in listeners where tlsListeners.contains(name) {
            for (i, result) in StatsBlock.tlsResults.enumerated() {
                w.counter("sluice_tls_handshakes_total", help: "TLS handshakes on the listener, by result.",
                          labels: [("listener", name), ("result", result)], value: sum { $0.tlsHandshakes(listener: l, result: i) })
            }
        }
        surge(&w, runtime: runtime, config: config, groupIds: ids.groups, sum: sum)
        return w.text
    }
}
