import Logging
import SluiceControlPlane
import SluiceCore
import SluiceProxy

/// Logs failed TLS handshakes once per listener, cause and interval, never per connection: a
/// scan or a misconfigured client fleet would otherwise flood the log. The counters
/// (`sluice_tls_handshakes_total`) are summed over the workers and compared with the last look.
struct TLSFailureLog {
    private var counters = CounterLog()

    mutating func check(runtime: Runtime, control: ControlPlane, log: Logger, now: UInt64) {
        guard counters.due(now: now) else { return }
        let tlsListeners = Set(runtime.planStore.plan.config.listeners.filter { $0.tls != nil }.map(\.name))
        guard !tlsListeners.isEmpty else { return }
        for (name, l) in control.statsIds.listeners where tlsListeners.contains(name) {
            // Results 0 and 1 are successes; the rest are failure causes.
            for (i, cause) in StatsBlock.tlsResults.enumerated() where i >= 2 {
                let total = runtime.stats.reduce(UInt64(0)) { $0 &+ $1.tlsHandshakes(listener: l, result: i) }
                let count = counters.increase(name + "|" + cause, total: total)
                if count > 0 {
                    log.warning("tls handshakes failed", metadata: [
                        "listener": "\(name)", "cause": "\(cause)", "count": "\(count)",
                        "interval": "\(CounterLog.intervalText)",
                    ])
                }
            }
        }
    }
}
