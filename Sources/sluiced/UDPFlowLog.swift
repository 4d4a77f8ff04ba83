import Logging
import SluiceControlPlane
import SluiceCore
import SluiceProxy

/// Logs a full UDP flow table at most once per listener per interval, never per datagram:
/// the workers only count (`sluice_errors_total{kind="udp_flow_table_full"}`); the control
/// loop sums the counters over the workers and compares them with its last look.
struct UDPFlowLog {
    /// How often the counters are compared.
    static let interval: UInt64 = 10_000_000_000
    private var last: [String: UInt64] = [:]
    private(set) var nextCheck: UInt64 = 0

    mutating func check(runtime: Runtime, control: ControlPlane, log: Logger, now: UInt64) {
        guard now >= nextCheck else { return }
        nextCheck = now &+ UDPFlowLog.interval
        let config = runtime.planStore.plan.config
        let udpListeners = Dictionary(config.listeners.compactMap { l in l.udp.map { (l.name, $0.maxFlows) } },
                                      uniquingKeysWith: { a, _ in a })
        guard !udpListeners.isEmpty else { return }
        for (name, l) in control.statsIds.listeners {
            guard let maxFlows = udpListeners[name] else { continue }
            let total = runtime.stats.reduce(UInt64(0)) { $0 &+ $1.udpFlowsFull(listener: l) }
            let before = last[name] ?? 0
            last[name] = total
            if total > before {
                log.warning("udp flow table full: datagrams of new clients dropped", metadata: [
                    "listener": "\(name)", "max_flows": "\(maxFlows)", "dropped": "\(total &- before)",
                    "interval": "\(UDPFlowLog.interval / 1_000_000_000)s",
                ])
            }
        }
    }
}
