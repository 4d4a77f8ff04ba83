#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#endif

/// `scaling:` of a target group (SPEC §11).
extension ConfigBuilder {
    /// `.some(nil)` when absent, `nil` after an error.
    mutating func scalingConfig(in group: YAMLMapping) -> ScalingConfig?? {
        guard let value = group["scaling"] else { return .some(nil) }
        guard let scaling = reader.mapping(value, supported: Schema.scalingKeys, expected: "a mapping with min, max and launch (terminate optional)")
        else { return nil }
        let before = reader.errors.count
        let range = ScalingConfig.countRange
        let expected = "a count from \(range.lowerBound) to \(range.upperBound)"
        let minValue = reader.required("min", in: scaling, expected: expected).flatMap { reader.int($0, in: range, expected: expected) }
        let maxValue = reader.required("max", in: scaling, expected: expected).flatMap { reader.int($0, in: range, expected: expected) }
        if let lo = minValue, let hi = maxValue, lo > hi, let at = scaling["max"] {
            reader.error("max (\(hi)) must be at least min (\(lo))", at: at)
        }
        let bounds = minValue.flatMap { lo in maxValue.map { hi in lo <= hi ? lo...hi : nil } } ?? nil
        func withinBounds(_ v: YAMLValue) -> Int? {
            guard let n = reader.int(v, in: range, expected: expected) else { return nil }
            if let bounds, !bounds.contains(n) {
                reader.error("expected a count from min (\(bounds.lowerBound)) to max (\(bounds.upperBound)), got \(n)", at: v)
                return nil
            }
            return n
        }
        let desired = scaling["desired"].flatMap { withinBounds($0) }
        let launch = reader.required("launch", in: scaling, expected: "the launch hook's absolute path").flatMap { hook($0) }
        let terminate = scaling["terminate"].flatMap { hook($0) }  // optional: without it, scale-in only drains
        let hookTimeout = scaling["hook_timeout"].map { ranged($0, ScalingConfig.hookTimeoutRange) }
            ?? ScalingConfig.defaultHookTimeout
        let cooldown = scaling["cooldown"].map { ranged($0, ScalingConfig.cooldownRange) } ?? ScalingConfig.defaultCooldown
        let replace = scaling["replace_unhealthy_after"].map { ranged($0, ScalingConfig.replaceUnhealthyRange) }
            ?? ScalingConfig.defaultReplaceUnhealthyAfter
        var schedule: [ScheduledAction] = []
        if let list = scaling["schedule"], let items = reader.sequence(list, expected: "a list of { cron, desired }", nullIsEmpty: true) {
            for item in items {
                guard let entry = reader.mapping(item, supported: Schema.scheduleKeys, expected: "a mapping { cron, desired }")
                else { continue }
                let d = reader.required("desired", in: entry, expected: expected).flatMap { withinBounds($0) }
                var parsed: (String, CronSchedule)?
                if let c = reader.required("cron", in: entry, expected: "a cron expression in UTC, like \"0 8 * * 1-5\""),
                   let text = reader.string(c, expected: "a cron expression") {
                    do {
                        parsed = (text, try CronSchedule(parsing: text))
                    } catch {
                        reader.error("\(error.description), got \(reader.quoted(text))", at: c)
                    }
                }
                if let parsed, let d { schedule.append(ScheduledAction(cron: parsed.0, schedule: parsed.1, desired: d)) }
            }
        }
        var tracking: TargetTracking?
        if let tv = scaling["target_tracking"],
           let tt = reader.mapping(tv, supported: Schema.targetTrackingKeys, expected: "a mapping { metric, target, window }") {
            let metrics = TargetTracking.Metric.allCases.map(\.rawValue)
            var metric: TargetTracking.Metric?
            if let mv = reader.required("metric", in: tt, expected: orList(metrics)), let text = reader.string(mv, expected: orList(metrics)) {
                metric = TargetTracking.Metric(rawValue: text)
                if metric == nil { reader.error("expected \(orList(metrics)), got \(reader.quoted(text))", at: mv) }
            }
            var target: Double?
            if let tv = reader.required("target", in: tt, expected: "a number more than 0") {
                target = positiveNumber(tv)
            }
            let window = tt["window"].map { ranged($0, TargetTracking.windowRange) } ?? TargetTracking.defaultWindow
            if let metric, let target { tracking = TargetTracking(metric: metric, target: target, window: window) }
        }
        guard reader.errors.count == before, let minValue, let maxValue, let launch else { return nil }
        return .some(ScalingConfig(min: minValue, max: maxValue, desired: desired, launch: launch, terminate: terminate,
                                   hookTimeout: hookTimeout, cooldown: cooldown, replaceUnhealthyAfter: replace,
                                   schedule: schedule, targetTracking: tracking))
    }

    /// A hook: an absolute path to an executable regular file.
    private mutating func hook(_ value: YAMLValue) -> String? {
        let expected = "an absolute path to an executable file"
        guard let text = path(value, expected: expected) else { return nil }
        guard text.hasPrefix("/") else {
            reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
            return nil
        }
        var info = stat()
        guard stat(text, &info) == 0 else {
            reader.error("cannot run \(text): \(String(cString: strerror(errno)))", at: value)
            return nil
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            reader.error("cannot run \(text): not a regular file", at: value)
            return nil
        }
        guard access(text, X_OK) == 0 else {
            reader.error("cannot run \(text): not executable", at: value)
            return nil
        }
        return text
    }

    /// A duration in `range`; 0 after an error (the caller's result is dropped then).
    private mutating func ranged(_ value: YAMLValue, _ range: ClosedRange<UInt64>) -> UInt64 {
        guard let nanos = reader.duration(value) else { return 0 }
        guard range.contains(nanos) else {
            reader.error("expected a duration from \(ScalingConfig.durationText(range.lowerBound)) to \(ScalingConfig.durationText(range.upperBound)), "
                             + "got \(reader.describe(value.node))", at: value)
            return 0
        }
        return nanos
    }

    /// A YAML number (integer or decimal) more than 0 and finite.
    private mutating func positiveNumber(_ value: YAMLValue) -> Double? {
        let expected = "a number more than 0"
        switch reader.kind(value.node) {
        case .int, .float:
            if let text = value.node.scalar?.string, let n = Double(text.filter { $0 != "_" }), n.isFinite, n > 0 {
                return n
            }
        default:
            break
        }
        reader.error("expected \(expected), got \(reader.describe(value.node))", at: value)
        return nil
    }
}
