import SluiceBalancer
import Testing

/// One `record` result, comparable.
private struct Step: Equatable {
    var changed: Bool
    var state: TargetState
    var reason: TargetReason?
    init(_ changed: Bool, _ state: TargetState, _ reason: TargetReason?) {
        self.changed = changed
        self.state = state
        self.reason = reason
    }
}

private func step(_ machine: inout HealthStateMachine, _ success: Bool, _ reason: TargetReason?) -> Step {
    let result = machine.record(success: success, reason: reason)
    return Step(result.changed, result.state, result.reason)
}

@Suite struct HealthStateMachineTests {
    @Test func reasonCodesAreELBs() {
        #expect(TargetReason.initialHealthChecking.rawValue == "Elb.InitialHealthChecking")
        #expect(TargetReason.registrationInProgress.rawValue == "Elb.RegistrationInProgress")
        #expect(TargetReason.outlierEjected.rawValue == "Target.OutlierEjected")
        #expect(TargetReason.allCases.count == 10)
        #expect(TargetState.allCases.map(\.rawValue) == [
            "initial", "healthy", "unhealthy", "draining", "unused", "unavailable",
        ])
    }

    @Test func newTargetTurnsHealthyAfterItsFirstSuccess() {
        var machine = HealthStateMachine(healthyThreshold: 3, unhealthyThreshold: 2)
        #expect(machine.state == .initial)
        #expect(machine.reason == .initialHealthChecking)
        let result = step(&machine, true, nil)
        #expect(result == Step(true, .healthy, nil))
    }

    @Test func unhealthyAfterThresholdFailuresInARow() {
        var machine = HealthStateMachine(healthyThreshold: 3, unhealthyThreshold: 2)
        machine.record(success: true, reason: nil)
        #expect(step(&machine, false, .timeout) == Step(false, .healthy, nil))
        // A success breaks the run.
        #expect(step(&machine, true, nil).changed == false)
        #expect(step(&machine, false, .timeout).changed == false)
        let result = step(&machine, false, .connectionRefused)
        #expect(result == Step(true, .unhealthy, .connectionRefused))
        // The reason follows the latest failure, without a state change.
        #expect(step(&machine, false, .responseCodeMismatch) == Step(false, .unhealthy, .responseCodeMismatch))
        #expect(step(&machine, false, nil) == Step(false, .unhealthy, .failedHealthChecks))
    }

    @Test func healthyAgainAfterThresholdSuccessesInARow() {
        var machine = HealthStateMachine(healthyThreshold: 3, unhealthyThreshold: 1)
        machine.record(success: true, reason: nil)
        #expect(step(&machine, false, .timeout).state == .unhealthy)
        #expect(step(&machine, true, nil) == Step(false, .unhealthy, .timeout))
        #expect(step(&machine, true, nil).changed == false)
        #expect(step(&machine, false, .timeout).changed == false)  // run broken
        #expect(step(&machine, true, nil).changed == false)
        #expect(step(&machine, true, nil).changed == false)
        #expect(step(&machine, true, nil) == Step(true, .healthy, nil))
    }

    @Test func initialTargetThatKeepsFailingTurnsUnhealthy() {
        var machine = HealthStateMachine(healthyThreshold: 5, unhealthyThreshold: 2)
        #expect(step(&machine, false, .connectionRefused) == Step(false, .initial, .initialHealthChecking))
        #expect(step(&machine, false, .connectionRefused) == Step(true, .unhealthy, .connectionRefused))
        // Once it has been unhealthy, one success is not enough.
        #expect(step(&machine, true, nil).state == .unhealthy)
    }

    @Test func thresholdOfOne() {
        var machine = HealthStateMachine(healthyThreshold: 1, unhealthyThreshold: 1)
        #expect(step(&machine, false, .timeout).state == .unhealthy)
        #expect(step(&machine, true, nil).state == .healthy)
        #expect(step(&machine, false, .timeout).state == .unhealthy)
    }
}
