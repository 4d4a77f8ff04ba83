import Logging
import SluiceControlPlane
import SluiceCore
import SluiceProxy

/// Logs a full UDP flow table at most once per listener per interval, never per datagram:
/// the workers only count (`sluice_errors_total{kind="udp_flow_table_full"}`); the control
/// loop sums the counters over the workers and compares them with its last look.
struct UDPFlowLog {
    private var counters = CounterLog()

    mutating func check(runtime: Runtime, control: ControlPlane, log: Logger, now: UInt64) {
        guard counters.due(now: now) else { return }
        let config = runtime.planStore.plan.config
        let udpListeners = Dictionary(config.listeners.compactMap { l in l.udp.map { (l.name, $0.maxFlows) } },
                                      uniquingKeysWith: { a, _ in a })
        guard !udpListeners.isEmpty else { return }
        for (name, l) in control.statsIds.listeners {
            guard let maxFlows = udpListeners[name] else { continue }
            let total = runtime.stats.reduce(UInt64(0)) { $0 &+ $1.udpFlowsFull(listener: l) }
            let dropped = counters.increase(name, total: total)
            if dropped > 0 {
                log.warning("udp flow table full: datagrams of new clients dropped", metadata: [
                    "listener": "\(name)", "max_flows": "\(maxFlows)", "dropped": "\(dropped)",
                    "interval": "\(CounterLog.intervalText)",
                ])
            }
        }
    }
}
