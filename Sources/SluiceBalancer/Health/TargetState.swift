/// A target's state in its group (SPEC §4), as the control API and events show it.
public enum TargetState: String, Sendable, Equatable, CaseIterable {
    /// Registered; the first checks are pending.
    case initial
    case healthy
    case unhealthy
    /// Deregistered: no new connections or requests; those in flight finish.
    case draining
    /// The group is not used by any listener.
    case unused
    /// Health checks are off: the target gets traffic as if healthy.
    case unavailable
}

/// Why a target is in its state, with ELB's reason codes as raw values.
public enum TargetReason: String, Sendable, Equatable, CaseIterable {
    case registrationInProgress = "Elb.RegistrationInProgress"
    case initialHealthChecking = "Elb.InitialHealthChecking"
    case responseCodeMismatch = "Target.ResponseCodeMismatch"
    case timeout = "Target.Timeout"
    case failedHealthChecks = "Target.FailedHealthChecks"
    case connectionRefused = "Target.ConnectionRefused"
    case deregistrationInProgress = "Target.DeregistrationInProgress"
    case notInUse = "Target.NotInUse"
    case healthCheckDisabled = "Target.HealthCheckDisabled"
    /// Passive checks: ejected for a back-off after failures in a row (`OutlierDetector`).
    case outlierEjected = "Target.OutlierEjected"
}
