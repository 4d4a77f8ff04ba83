import ArgumentParser
import Foundation
import SluiceControl
import Testing

@testable import sluicectl

/// `sluicectl events failed` and `events redeliver ID` (SPEC §13), next to `events [--group G]`.
@Suite struct EventsCommandTests {
    @Test func parsing() throws {
        #expect(try SluiceCtl.parseAsRoot(["events"]) is SluiceCtl.Events)
        #expect(try SluiceCtl.parseAsRoot(["events", "failed", "--json"]) is SluiceCtl.EventsFailed)
        let redeliver = try #require(try SluiceCtl.parseAsRoot(["events", "redeliver", "6b1-7"]) as? SluiceCtl.EventsRedeliver)
        #expect(redeliver.id == "6b1-7")
        #expect(SluiceCtl.EventsRedeliver.path(id: "a b/c") == "/v1/events/failed/a%20b%2Fc/redeliver")
        do {
            _ = try SluiceCtl.parseAsRoot(["events", "redeliver"])
            Issue.record("an id is required")
        } catch {
            #expect(ExitStatus.code(for: error) == 2)
        }
    }

    @Test func table() {
        let failed = FailedEvents(failed: [
            FailedEvent(id: "6b1-7", rule: "page", event: ControlEvent(id: "6b1-7", type: "target_state"), attempts: 10,
                        error: "HTTP 500", failedAt: "2026-12-07T12:00:00.000Z"),
        ])
        #expect(SluiceCtl.EventsFailed.table(failed) == """
            ID     RULE  TYPE          ATTEMPTS  ERROR
            6b1-7  page  target_state        10  HTTP 500

            """)
    }

    @Test func failedEventWireFormat() throws {
        let f = FailedEvent(id: "x-1", rule: "r", event: ControlEvent(id: "x-1", time: "t", type: "reload"), attempts: 3,
                            error: "e", failedAt: "2026-12-07T12:00:00.000Z")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(FailedEvents(failed: [f])), as: UTF8.self)
        #expect(text == #"{"failed":[{"attempts":3,"error":"e","event":{"id":"x-1","time":"t","type":"reload"},"failed_at":"2026-12-07T12:00:00.000Z","id":"x-1","rule":"r"}]}"#)
    }
}
