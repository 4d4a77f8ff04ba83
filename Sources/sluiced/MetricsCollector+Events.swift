import SluiceControl
import SluiceEvents

/// The event rules' metrics (SPEC §13), one sample per rule and metric (samples of a metric together).
extension MetricsCollector {
    static func events(_ w: inout MetricsWriter, rules: [EventRules.RuleMetrics]) {
        let deliveries = "Event delivery attempts per rule: success or failure (one per attempt)."
        for r in rules {
            w.counter("sluice_event_deliveries_total", help: deliveries, labels: [("rule", r.rule), ("result", "success")],
                      value: r.successes)
            w.counter("sluice_event_deliveries_total", help: deliveries, labels: [("rule", r.rule), ("result", "failure")],
                      value: r.failures)
        }
        for r in rules {
            w.gauge("sluice_event_outbox_length", help: "Events in a rule's outbox not yet delivered (dead letters excluded).",
                    labels: [("rule", r.rule)], value: r.outboxLength)
        }
        for r in rules {
            w.gauge("sluice_event_dead_letters", help: "Events of a rule that failed every attempt (sluicectl events failed).",
                    labels: [("rule", r.rule)], value: r.deadLetters)
        }
    }
}
