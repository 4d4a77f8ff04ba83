/// The rise/fall policy of active health checks for one target (SPEC §4), apart from the
/// probing: the prober reports each result with `record(success:reason:)` and applies the
/// state it returns.
///
/// * A new target (`initial`) turns `healthy` after its first success.
/// * After that, it turns `healthy` after `healthyThreshold` successes in a row and
///   `unhealthy` after `unhealthyThreshold` failures in a row (an `initial` target that keeps
///   failing turns `unhealthy` after `unhealthyThreshold` failures too).
///
/// Only `initial`, `healthy` and `unhealthy` come from here; `draining`, `unused` and
/// `unavailable` are decided by whoever owns the registration.
public struct HealthStateMachine: Sendable, Equatable {
    public let healthyThreshold: Int
    public let unhealthyThreshold: Int
    /// `initial`, `healthy` or `unhealthy`.
    public private(set) var state: TargetState
    /// `nil` while healthy; else why the target is not (yet) healthy.
    public private(set) var reason: TargetReason?
    /// Successes in a row (reset by a failure).
    public private(set) var successes = 0
    /// Failures in a row (reset by a success).
    public private(set) var failures = 0

    /// A machine for a newly registered target: `initial`, `Elb.InitialHealthChecking`.
    /// Thresholds are clamped to 1 or more.
    public init(healthyThreshold: Int, unhealthyThreshold: Int) {
        self.healthyThreshold = max(1, healthyThreshold)
        self.unhealthyThreshold = max(1, unhealthyThreshold)
        self.state = .initial
        self.reason = .initialHealthChecking
    }

    /// Records one check result. `reason` says why a failed check failed (`Target.Timeout`,
    /// `Target.ConnectionRefused`, `Target.ResponseCodeMismatch`); `nil` reads as
    /// `Target.FailedHealthChecks`. Returns whether the state changed, and the state and
    /// reason after the result. While unhealthy, the reason follows the latest failure
    /// without counting as a change.
    @discardableResult
    public mutating func record(success: Bool, reason: TargetReason?) -> (
        changed: Bool, state: TargetState, reason: TargetReason?
    ) {
        let before = state
        if success {
            failures = 0
            successes = min(successes + 1, healthyThreshold)
            switch state {
            case .initial:
                state = .healthy
            case .unhealthy where successes >= healthyThreshold:
                state = .healthy
            default:
                break
            }
            if state == .healthy { self.reason = nil }
        } else {
            successes = 0
            failures = min(failures + 1, unhealthyThreshold)
            let why = reason ?? .failedHealthChecks
            switch state {
            case .healthy, .initial:
                if failures >= unhealthyThreshold {
                    state = .unhealthy
                    self.reason = why
                }
            case .unhealthy:
                self.reason = why
            default:
                break
            }
        }
        return (state != before, state, self.reason)
    }
}
