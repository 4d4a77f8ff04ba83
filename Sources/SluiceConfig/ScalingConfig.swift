/// `scaling:` of a target group (SPEC §11): a managed group, whose targets Sluice launches
/// and terminates itself through the user's hooks.
///
/// A managed group may also list static `targets:`. They count in `actual` (they serve like
/// any target) but scaling never terminates them: the file owns them.
public struct ScalingConfig: Sendable, Equatable {
    /// `min` ≤ `desired` ≤ `max`, all within `countRange`.
    public var min: Int
    public var max: Int
    /// The starting desired count (default `min`); the persisted one wins after a restart.
    public var desired: Int
    /// Absolute paths of the executable hooks. Without a terminate hook, a target leaving the
    /// group is drained and deregistered only (whatever runs it is the user's to stop).
    public var launch: String
    public var terminate: String?
    /// Nanoseconds; a hook running longer is killed with its whole process group.
    public var hookTimeout: UInt64
    /// Nanoseconds after an activity before the next target-tracking step.
    public var cooldown: UInt64
    /// Nanoseconds a target may stay unhealthy before it is replaced.
    public var replaceUnhealthyAfter: UInt64
    public var schedule: [ScheduledAction]
    public var targetTracking: TargetTracking?

    public static let countRange = 0...10_000
    public static let defaultHookTimeout: UInt64 = 300 * Nanoseconds.second
    public static let defaultCooldown: UInt64 = 60 * Nanoseconds.second
    public static let defaultReplaceUnhealthyAfter: UInt64 = 300 * Nanoseconds.second
    public static let hookTimeoutRange: ClosedRange<UInt64> = Nanoseconds.second...3_600 * Nanoseconds.second
    public static let cooldownRange: ClosedRange<UInt64> = 0...3_600 * Nanoseconds.second
    public static let replaceUnhealthyRange: ClosedRange<UInt64> = Nanoseconds.second...86_400 * Nanoseconds.second

    public init(min: Int, max: Int, desired: Int? = nil, launch: String, terminate: String?,
                hookTimeout: UInt64 = ScalingConfig.defaultHookTimeout, cooldown: UInt64 = ScalingConfig.defaultCooldown,
                replaceUnhealthyAfter: UInt64 = ScalingConfig.defaultReplaceUnhealthyAfter,
                schedule: [ScheduledAction] = [], targetTracking: TargetTracking? = nil) {
        self.min = min
        self.max = max
        self.desired = desired ?? min
        self.launch = launch
        self.terminate = terminate
        self.hookTimeout = hookTimeout
        self.cooldown = cooldown
        self.replaceUnhealthyAfter = replaceUnhealthyAfter
        self.schedule = schedule
        self.targetTracking = targetTracking
    }

    /// A duration as causes and messages write it: `5m`, `90s`, `1h`.
    public static func durationText(_ nanos: UInt64) -> String {
        let s = nanos / Nanoseconds.second
        if s == 0 { return nanos == 0 ? "0s" : "\(nanos / Nanoseconds.millisecond)ms" }
        if s % 3_600 == 0 { return "\(s / 3_600)h" }
        if s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }

    /// `n` clamped to `min...max`.
    public func clamp(_ n: Int) -> Int { Swift.max(min, Swift.min(max, n)) }
}

/// One `schedule:` entry: at each time `cron` matches (UTC), `desired` is set.
public struct ScheduledAction: Sendable, Equatable {
    /// The expression as written (activities name it: "scheduled action 0 8 * * 1-5").
    public var cron: String
    public var schedule: CronSchedule
    public var desired: Int

    public init(cron: String, schedule: CronSchedule, desired: Int) {
        self.cron = cron
        self.schedule = schedule
        self.desired = desired
    }
}

/// `target_tracking:` (dynamic scaling).
public struct TargetTracking: Sendable, Equatable {
    public enum Metric: String, Sendable, Equatable, CaseIterable {
        case requestsPerTargetPerSecond = "requests_per_target_per_second"
        case inFlightPerTarget = "in_flight_per_target"
    }

    public var metric: Metric
    /// The value per target to keep; more than 0.
    public var target: Double
    /// Nanoseconds the metric must stay low before a scale-in step.
    public var window: UInt64

    public static let defaultWindow: UInt64 = 60 * Nanoseconds.second
    public static let windowRange: ClosedRange<UInt64> = 10 * Nanoseconds.second...3_600 * Nanoseconds.second

    public init(metric: Metric, target: Double, window: UInt64 = TargetTracking.defaultWindow) {
        self.metric = metric
        self.target = target
        self.window = window
    }
}
