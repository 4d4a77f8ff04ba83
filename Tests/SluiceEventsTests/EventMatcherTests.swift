import SluiceConfig
import SluiceControl
import Testing

@testable import SluiceEvents

/// Match semantics of SPEC §13: OR within a field, AND across fields, empty matches all.
@Suite struct EventMatcherTests {
    let unhealthy = ControlEvent(id: "a-1", type: "target_state", group: "app", target: "10.0.0.1:80",
                                 state: "unhealthy", reason: "timeout")

    @Test func emptyMatchesEverything() {
        #expect(EventMatcher.matches(unhealthy, [:]))
        #expect(EventMatcher.matches(ControlEvent(type: "reload"), [:]))
    }

    @Test func orWithinAField() {
        #expect(EventMatcher.matches(unhealthy, [.state: ["healthy", "unhealthy"]]))
        #expect(!EventMatcher.matches(unhealthy, [.state: ["healthy", "draining"]]))
    }

    @Test func andAcrossFields() {
        #expect(EventMatcher.matches(unhealthy, [.type: ["target_state"], .group: ["app"], .state: ["unhealthy"]]))
        #expect(!EventMatcher.matches(unhealthy, [.type: ["target_state"], .group: ["web"]]))
    }

    @Test func absentFieldMatchesNoValue() {
        #expect(!EventMatcher.matches(unhealthy, [.cause: ["manual"]]))
        let scaling = ControlEvent(type: "scaling_activity", group: "app", activity: "act-1", cause: "manual",
                                   result: "successful")
        #expect(EventMatcher.matches(scaling, [.cause: ["manual"], .result: ["successful", "failed"], .activity: ["act-1"]]))
        #expect(EventMatcher.matches(ControlEvent(type: "reload", message: "ok"), [.message: ["ok"]]))
        #expect(!EventMatcher.matches(unhealthy, [.reason: ["refused"]]))
        #expect(EventMatcher.matches(unhealthy, [.reason: ["timeout"], .target: ["10.0.0.1:80"]]))
    }
}
