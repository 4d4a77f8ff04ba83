import Foundation
import SluiceControl

/// An event as the rules see it: the event, its id, and its JSON exactly as `GET /v1/events`
/// encodes it (one object, keys sorted, no trailing newline) — the webhook body, signed as is.
struct ControlEventRef: Sendable {
    let event: ControlEvent
    let id: String
    let json: [UInt8]

    init?(_ event: ControlEvent) {
        guard let id = event.id, let data = try? Self.encoder.encode(event) else { return nil }
        self.event = event
        self.id = id
        json = Array(data)
    }

    // The same settings as the control API's encoder.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// The `type` of an event's JSON, for `SLUICE_EVENT_TYPE`.
    static func type(of json: [UInt8]) -> String {
        (try? JSONDecoder().decode(ControlEvent.self, from: Data(json)))?.type ?? ""
    }

    static func now() -> String { ControlEvent.now() }
}
