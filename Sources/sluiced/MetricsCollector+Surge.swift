import SluiceConfig
import SluiceControl
import SluiceProxy

/// The surge-queue metrics (SPEC §12): `sluice_surge_queue_length{group}` (gauge),
/// `sluice_surge_queue_overflow_total{group}`, `sluice_surge_queue_wait_seconds{group}`
/// (histogram, the buckets of `sluice_request_duration_seconds`), for every group of the
/// running config with a queue; and the `surge_queue_timeout` kind of `sluice_errors_total`.
extension MetricsCollector {
    static func surge(_ w: inout MetricsWriter, runtime: Runtime, config: Config, groupIds: [String: Int],
                      sum: ((StatsBlock) -> UInt64) -> UInt64) {
        let queued = config.targetGroups.filter { $0.surgeQueue.size > 0 }.map(\.name)
        for name in queued {
            w.gauge("sluice_surge_queue_length", help: "Requests (L7) or connections (L4) waiting in the group's surge queue.",
                    labels: [("group", name)], value: runtime.surgeQueueLength(group: name))
        }
        for name in queued {
            let g = groupIds[name] ?? -1
            w.counter("sluice_surge_queue_overflow_total", help: "Requests or connections refused because the surge queue was full.",
                      labels: [("group", name)], value: sum { $0.surgeOverflows(group: g) })
        }
        for name in queued {
            let g = groupIds[name] ?? -1
            var buckets: [(le: Double, count: UInt64)] = []
            var running: UInt64 = 0
            let waits = runtime.stats.map { $0.surgeWaits(group: g) }
            for (i, le) in StatsBlock.buckets.enumerated() {
                running &+= waits.reduce(0) { $0 &+ $1.buckets[i] }
                buckets.append((le: le, count: running))
            }
            let sumMicros = waits.reduce(UInt64(0)) { $0 &+ $1.sumMicros }
            let count = waits.reduce(UInt64(0)) { $0 &+ $1.count }
            w.histogram("sluice_surge_queue_wait_seconds", help: "Time spent in the surge queue (dispatched, timed out or gone).",
                        labels: [("group", name)], buckets: buckets, sum: Double(sumMicros) / 1e6, count: count)
        }
    }

    /// `sluice_errors_total{kind="surge_queue_timeout"}` (next to the other kinds).
    static func surgeErrors(_ w: inout MetricsWriter, listeners: [(key: String, value: Int)],
                            sum: ((StatsBlock) -> UInt64) -> UInt64) {
        for (name, l) in listeners {
            let v = sum { $0.surgeTimeouts(listener: l) }
            if v > 0 {
                w.counter("sluice_errors_total", help: errorsHelp, labels: [("listener", name), ("kind", "surge_queue_timeout")],
                          value: v)
            }
        }
    }
}
