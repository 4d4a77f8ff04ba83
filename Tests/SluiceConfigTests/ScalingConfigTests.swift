import Foundation
import Testing

@testable import SluiceConfig

/// `scaling:` of a target group (SPEC §11): loaded, defaults, and placed errors.
@Suite struct ScalingConfigTests {
    /// An executable hook and a file that is not executable, in a temporary directory.
    static let hooks: (launch: String, terminate: String, plain: String) = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-scaling-config-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let launch = dir.appendingPathComponent("launch").path
        let terminate = dir.appendingPathComponent("terminate").path
        let plain = dir.appendingPathComponent("plain").path
        for p in [launch, terminate, plain] { try? "#!/bin/sh\n".write(toFile: p, atomically: true, encoding: .utf8) }
        chmod(launch, 0o755)
        chmod(terminate, 0o755)
        chmod(plain, 0o644)
        return (launch, terminate, plain)
    }()

    func document(_ lines: [String]) -> String {
        groupDocument((["scaling:"] + lines.map { "  " + $0 }).joined(separator: "\n"))
    }

    @Test func fullBlockLoads() throws {
        let h = Self.hooks
        let config = try ConfigLoader.parse(yaml: document([
            "min: 2", "max: 20", "desired: 4", "launch: \(h.launch)", "terminate: \(h.terminate)", "hook_timeout: 2m",
            "cooldown: 0s", "replace_unhealthy_after: 90s",
            "schedule:", "  - { cron: \"0 8 * * 1-5\", desired: 10 }", "  - { cron: \"0 20 * * *\", desired: 4 }",
            "target_tracking: { metric: requests_per_target_per_second, target: 200.5, window: 10s }",
        ]), file: testFile)
        let s = try #require(config.targetGroups.first?.scaling)
        #expect(s.min == 2 && s.max == 20 && s.desired == 4)
        #expect(s.launch == h.launch && s.terminate == h.terminate)
        #expect(s.hookTimeout == 120 * Nanoseconds.second && s.cooldown == 0)
        #expect(s.replaceUnhealthyAfter == 90 * Nanoseconds.second)
        #expect(s.schedule.map(\.cron) == ["0 8 * * 1-5", "0 20 * * *"])
        #expect(s.schedule.map(\.desired) == [10, 4])
        #expect(s.targetTracking == TargetTracking(metric: .requestsPerTargetPerSecond, target: 200.5, window: 10 * Nanoseconds.second))
    }

    @Test func defaults() throws {
        let h = Self.hooks
        let config = try ConfigLoader.parse(yaml: document(["min: 1", "max: 3", "launch: \(h.launch)", "terminate: \(h.terminate)"]),
                                            file: testFile)
        let s = try #require(config.targetGroups.first?.scaling)
        #expect(s.desired == 1, "desired defaults to min")
        #expect(s.hookTimeout == ScalingConfig.defaultHookTimeout)
        #expect(s.cooldown == ScalingConfig.defaultCooldown)
        #expect(s.replaceUnhealthyAfter == ScalingConfig.defaultReplaceUnhealthyAfter)
        #expect(s.schedule.isEmpty && s.targetTracking == nil)
        #expect(s.terminate == h.terminate)
        let drainOnly = try ConfigLoader.parse(yaml: document(["min: 1", "max: 3", "launch: \(h.launch)"]), file: testFile)
        #expect(drainOnly.targetGroups.first?.scaling?.terminate == nil, "without a terminate hook, scale-in only drains")
        let plain = try ConfigLoader.parse(yaml: groupDocument(""), file: testFile)
        #expect(plain.targetGroups.first?.scaling == nil)
    }

    @Test func errorsArePlaced() {
        let h = Self.hooks
        let errors = loadErrors(document([
            "min: 3", "max: 2", "desired: 9", "launch: relative/hook", "terminate: \(h.plain)", "hook_timeout: 0s",
            "cooldown: 2h", "replace_unhealthy_after: 48h",
            "schedule:", "  - { cron: \"61 * * * *\", desired: 1 }",
            "target_tracking: { metric: cpu, target: 0, window: 5s }",
            "colour: blue",
        ]))
        let at = errors.map { "\($0.line):\($0.column) \($0.path)" }
        #expect(at.contains("8:12 target_groups[0].scaling.max"), "\(at)")
        #expect(at.contains { $0.hasSuffix("scaling.launch") })
        #expect(at.contains { $0.hasSuffix("scaling.terminate") })
        #expect(at.contains { $0.hasSuffix("scaling.hook_timeout") })
        #expect(at.contains { $0.hasSuffix("scaling.cooldown") })
        #expect(at.contains { $0.hasSuffix("scaling.replace_unhealthy_after") })
        #expect(at.contains("16:19 target_groups[0].scaling.schedule[0].cron"), "\(at)")
        #expect(at.contains { $0.hasSuffix("scaling.target_tracking.metric") })
        #expect(at.contains { $0.hasSuffix("scaling.target_tracking.target") })
        #expect(at.contains { $0.hasSuffix("scaling.target_tracking.window") })
        #expect(at.contains { $0.hasSuffix("scaling.colour") })
        #expect(errors.first { $0.path.hasSuffix("scaling.terminate") }?.message == "cannot run \(h.plain): not executable")
        #expect(errors.first { $0.path.hasSuffix("scaling.max") }?.message.contains("at least min") == true)
        let cron = errors.first { $0.path.hasSuffix("cron") }?.message ?? ""
        #expect(cron.contains("\"61 * * * *\""), "\(cron)")
    }

    @Test func countsMustFitMinAndMax() {
        let h = Self.hooks
        let errors = loadErrors(document([
            "min: 1", "max: 3", "desired: 4", "launch: \(h.launch)", "terminate: \(h.terminate)",
            "schedule:", "  - { cron: \"@daily\", desired: 0 }",
        ]))
        #expect(errors.map(\.path) == ["target_groups[0].scaling.desired", "target_groups[0].scaling.schedule[0].desired"])
        #expect(errors.first?.message == "expected a count from min (1) to max (3), got 4")
        let missing = loadErrors(document(["min: 0", "max: 10001"]))
        #expect(missing.map(\.path).sorted() == ["target_groups[0].scaling.launch", "target_groups[0].scaling.max"],
                "terminate is optional")
        let gone = loadErrors(document(["min: 0", "max: 1", "launch: /nonexistent/hook", "terminate: \(h.terminate)"]))
        #expect(gone.first?.message == "cannot run /nonexistent/hook: No such file or directory")
    }

    @Test func staticTargetsAreAllowedInAManagedGroup() throws {
        let h = Self.hooks
        let yaml = document(["min: 0", "max: 2", "launch: \(h.launch)", "terminate: \(h.terminate)"])
            + "\n    targets:\n      - { address: 127.0.0.1:9001 }\n"
        let config = try ConfigLoader.parse(yaml: yaml, file: testFile)
        #expect(config.targetGroups.first?.targets.count == 1)
        #expect(config.targetGroups.first?.scaling != nil)
    }
}
