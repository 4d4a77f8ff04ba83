import Foundation
import SluiceConfig
import SluiceControl
import Synchronization
import Testing

@testable import SluiceEvents

/// The EventBus sink and EventRules without a daemon: every event reaches the sink in id order, even
/// when a subscriber would drop; matched events land in the outbox before `publish` returns.
@Suite struct EventRulesUnitTests {
    @Test func sinkSeesEveryEventInIDOrderBeforeSubscribers() throws {
        let bus = EventBus()
        let seen = Mutex<[String]>([])
        bus.addSink { e in seen.withLock { $0.append(e.id ?? "?") } }
        let subscription = bus.subscribe()
        // More than a subscriber keeps: the sink still sees all of them.
        let total = EventBus.maxBacklog + 500
        let done = DispatchGroup()
        for t in 0..<4 {
            done.enter()
            Thread {
                for i in 0..<(total / 4) { bus.publish(ControlEvent(type: "reload", message: "\(t)-\(i)")) }
                done.leave()
            }.start()
        }
        #expect(done.wait(timeout: .now() + 60) == .success)
        let ids = seen.withLock { $0 }
        #expect(ids.count == total)
        let sequences = ids.compactMap { Int($0.split(separator: "-").last ?? "") }
        #expect(sequences == Array(1...total), "the sink saw events in id order")
        #expect(subscription.dropped == 500)
        // The subscriber's events are in the same order.
        var last = 0
        while let e = subscription.next(timeout: 0) {
            let s = Int(e.id?.split(separator: "-").last ?? "") ?? 0
            #expect(s > last)
            last = s
        }
    }

    @Test func matchedEventsAreInTheOutboxWhenPublishReturns() throws {
        let dir = NSTemporaryDirectory() + "sluice-rules-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The state directory does not exist yet (a first start): the outbox makes the whole path.
        let outboxes = dir + "/state/deeper/events"
        let rules = EventRules(directory: outboxes, log: { _ in })
        // A receiver that is not there: nothing is delivered, everything stays pending.
        let target = try WebhookTarget.parse("http://127.0.0.1:9/x").get()
        let config = EventsConfig(rules: [
            EventRuleConfig(name: "regs", match: [.type: ["registration"]], deliver: .webhook(target, secret: nil)),
            EventRuleConfig(name: "all", deliver: .exec("/bin/false")),
        ], retry: EventRetryConfig(attempts: 1000, backoff: 3_600_000_000_000, maxBackoff: 3_600_000_000_000))
        #expect(rules.apply(config).isEmpty)
        let bus = EventBus()
        bus.addSink { rules.offer($0) }
        let published = bus.publish(ControlEvent(type: "registration", group: "g", target: "10.0.0.1:80"))
        bus.publish(ControlEvent(type: "reload"))
        let records = try OutboxFile(directory: outboxes, name: "regs").load().records
        #expect(records.count == 1)
        guard case .event(let id, let json) = records.first else {
            Issue.record("expected an event record")
            return
        }
        #expect(id == published.id)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(json == Array(try encoder.encode(published)), "the body is the event as /v1/events encodes it")
        #expect(rules.metrics().map(\.rule) == ["regs", "all"])
        #expect(rules.metrics().first { $0.rule == "all" }?.outboxLength ?? 0 >= 1)
        // A reload without the rule pauses it: it takes no more events.
        rules.apply(EventsConfig(rules: [config.rules[1]], retry: config.retry))
        bus.publish(ControlEvent(type: "registration", group: "g", target: "10.0.0.2:80"))
        #expect(try OutboxFile(directory: outboxes, name: "regs").load().records.count == 1)
        #expect(try !rules.redeliver(id: "nope"))
        rules.stop()
    }

    @Test func directoryOfTheStateFile() {
        #expect(EventRules.directory(forStateFile: "/var/lib/sluice/state.json") == "/var/lib/sluice/events")
        #expect(EventRules.directory(forStateFile: "/state.json") == "/events")
        #expect(EventRules.directory(forStateFile: "state.json") == "events")
    }
}
