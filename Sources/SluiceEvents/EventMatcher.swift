import SluiceConfig
import SluiceControl

/// Whether an event matches a rule's `match`: every named field has one of its values (OR within a
/// field, AND across fields); an absent field of the event matches no value. Empty matches all. Pure.
public enum EventMatcher {
    public static func matches(_ event: ControlEvent, _ match: [EventField: [String]]) -> Bool {
        for (field, values) in match {
            guard let value = value(of: field, in: event), values.contains(value) else { return false }
        }
        return true
    }

    static func value(of field: EventField, in event: ControlEvent) -> String? {
        switch field {
        case .type: event.type
        case .group: event.group
        case .target: event.target
        case .state: event.state
        case .reason: event.reason
        case .cause: event.cause
        case .result: event.result
        case .activity: event.activity
        case .message: event.message
        }
    }
}
