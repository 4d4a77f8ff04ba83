import SluiceConfig

/// The decisions of a managed group's policies apart from any I/O (SPEC §11): the Scaler
/// feeds it what it measured each tick and applies the `desired` count it returns.
///
/// * A non-empty surge queue (§12) is pressure: a group with no targets goes to at least 1 at
///   once ("surge queue: N waiting, no targets"); with target tracking and targets, to at
///   least `actual + 1` (after the cooldown); and no scale-in happens while it lasts.
/// * Target tracking: `ceil(actual × metric / target)` clamped to `min...max`. More than
///   `desired` applies once the cooldown since the last activity has passed; fewer than
///   `actual` applies only after the metric asked for fewer for a whole `window`, by at most
///   10% of `actual` (at least 1) a step, one step per cooldown.
public struct ScalingPlanner: Sendable, Equatable {
    public struct Inputs: Sendable {
        public var desired: Int
        /// Registered, non-draining targets (static ones included).
        public var actual: Int
        public var min: Int
        public var max: Int
        /// The tracked metric per target now (req/s or in flight), nil when unknown.
        public var metric: Double?
        public var queueLength: Int
        /// Monotonic nanoseconds of the end of the group's last activity, nil if none yet.
        public var lastActivity: UInt64?
        public var now: UInt64

        public init(desired: Int, actual: Int, min: Int, max: Int, metric: Double? = nil, queueLength: Int = 0,
                    lastActivity: UInt64? = nil, now: UInt64) {
            self.desired = desired
            self.actual = actual
            self.min = min
            self.max = max
            self.metric = metric
            self.queueLength = queueLength
            self.lastActivity = lastActivity
            self.now = now
        }
    }

    /// A new `desired` count and why.
    public struct Decision: Sendable, Equatable {
        public var desired: Int
        public var cause: String
        public init(desired: Int, cause: String) {
            self.desired = desired
            self.cause = cause
        }
    }

    public let tracking: TargetTracking?
    public let cooldown: UInt64
    /// Since when the metric has asked for fewer targets than `actual`, without a break.
    public private(set) var lowSince: UInt64?

    public init(tracking: TargetTracking?, cooldown: UInt64) {
        self.tracking = tracking
        self.cooldown = cooldown
    }

    /// The next `desired`, or nil to keep it.
    public mutating func decide(_ i: Inputs) -> Decision? {
        func clamp(_ n: Int) -> Int { Swift.max(i.min, Swift.min(i.max, n)) }
        let cooled = i.lastActivity.map { i.now >= $0 && i.now - $0 >= cooldown } ?? true
        let pressured = i.queueLength > 0
        if pressured && i.actual == 0 && i.desired < 1 && clamp(1) >= 1 {
            lowSince = nil
            return Decision(desired: clamp(1), cause: "surge queue: \(i.queueLength) waiting, no targets")
        }
        guard let tracking else { return nil }
        if pressured {
            lowSince = nil
            let wanted = clamp(i.actual < Int.max ? i.actual + 1 : i.actual)
            if i.actual > 0 && wanted > i.desired && cooled {
                return Decision(desired: wanted, cause: "surge queue: \(i.queueLength) waiting")
            }
        }
        guard let metric = i.metric, metric.isFinite, metric >= 0, i.actual > 0 else {
            lowSince = nil
            return nil
        }
        let proposed = clamp(Self.capacity(actual: i.actual, metric: metric, target: tracking.target, max: i.max))
        let what = "\(Self.number(metric)) \(tracking.metric == .requestsPerTargetPerSecond ? "req/s" : "in flight") per target"
        if proposed > i.desired {
            lowSince = nil
            guard cooled else { return nil }
            return Decision(desired: proposed, cause: "target tracking: \(what) > \(Self.number(tracking.target))")
        }
        guard proposed < i.actual && !pressured else {
            lowSince = nil
            return nil
        }
        let since = lowSince ?? i.now
        lowSince = since
        guard i.now >= since && i.now - since >= tracking.window && cooled else { return nil }
        let step = Swift.max(1, i.actual / 10)
        let next = clamp(Swift.max(proposed, i.actual - step))
        guard next < i.desired else { return nil }
        return Decision(desired: next, cause: "target tracking: \(what) < \(Self.number(tracking.target))")
    }

    /// `ceil(actual × metric / target)`, within 0...max (no overflow for any input).
    static func capacity(actual: Int, metric: Double, target: Double, max: Int) -> Int {
        guard target > 0 else { return max }
        let wanted = (Double(actual) * metric / target).rounded(.up)
        guard wanted.isFinite, wanted < Double(max) else { return max }
        return wanted > 0 ? Int(wanted) : 0
    }

    /// A metric in causes: whole numbers without decimals, else one decimal.
    static func number(_ v: Double) -> String {
        guard v.isFinite, v < 1e15, v > -1e15 else { return "\(v)" }
        let rounded = (v * 10).rounded() / 10
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(rounded)
    }
}
