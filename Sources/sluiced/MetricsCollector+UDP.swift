import SluiceControl
import SluiceProxy

/// The UDP metrics: datagrams per direction, and the UDP kinds of `sluice_errors_total`.
/// Written for every udp and tcp_udp listener of the running config, zeros included.
extension MetricsCollector {
    /// `# HELP` is written by the first sample of a metric; this is the text the others use.
    static let errorsHelp = "Errors by kind: Sluice's own answers by status, HTTP/2 connections closed for abuse (h2_*)."

    /// `sluice_errors_total` samples of kinds `udp_flow_table_full` and `udp_dropped` (call
    /// next to the other `sluice_errors_total` samples: a metric's samples stay together).
    static func udpErrors(_ w: inout MetricsWriter, listeners: [(key: String, value: Int)], udp: Set<String>,
                          sum: ((StatsBlock) -> UInt64) -> UInt64) {
        for (name, l) in listeners where udp.contains(name) {
            w.counter("sluice_errors_total", help: errorsHelp, labels: [("listener", name), ("kind", "udp_flow_table_full")],
                      value: sum { $0.udpFlowsFull(listener: l) })
            w.counter("sluice_errors_total", help: errorsHelp, labels: [("listener", name), ("kind", "udp_dropped")],
                      value: sum { $0.udpDropped(listener: l) })
        }
    }

    /// `sluice_udp_datagrams_total{listener,direction}`.
    static func udpDatagrams(_ w: inout MetricsWriter, listeners: [(key: String, value: Int)], udp: Set<String>,
                             sum: ((StatsBlock) -> UInt64) -> UInt64) {
        let help = "Datagrams received from clients (in) and sent to clients (out)."
        for (name, l) in listeners where udp.contains(name) {
            w.counter("sluice_udp_datagrams_total", help: help, labels: [("listener", name), ("direction", "in")],
                      value: sum { $0.udpDatagrams(listener: l).incoming })
            w.counter("sluice_udp_datagrams_total", help: help, labels: [("listener", name), ("direction", "out")],
                      value: sum { $0.udpDatagrams(listener: l).outgoing })
        }
    }
}
