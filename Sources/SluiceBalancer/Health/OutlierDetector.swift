/// Passive health checks for one target (SPEC §4): connect failures and 5xx answers seen by
/// the data plane, `threshold` in a row, eject the target for a back-off period, so a dead
/// target stops getting traffic before the next active check.
///
/// Back-off: `baseEjection × 2^(n-1)` for the n-th ejection in a row (5s, 10s, 20s, … by
/// default), capped at `maxEjection` (5 min). The level decays by one for every whole
/// `decayPeriod` (1 min) between the end of one ejection and the start of the next, so a
/// target that stays good is back to the base back-off after a few minutes.
///
/// A group never has more than half its targets ejected: check `mayEject(ejectedCount:total:)`
/// (or pass its answer as `allowed`) before ejecting. The clock is injected (nanoseconds).
public struct OutlierDetector: Sendable, Equatable {
    /// Failures in a row that eject, by default.
    public static let defaultThreshold = 3
    public static let defaultBaseEjection: UInt64 = 5_000_000_000
    public static let defaultMaxEjection: UInt64 = 300_000_000_000
    public static let defaultDecayPeriod: UInt64 = 60_000_000_000

    public let threshold: Int
    public let baseEjection: UInt64
    public let maxEjection: UInt64
    public let decayPeriod: UInt64

    /// Failures in a row since the last success or ejection.
    public private(set) var consecutiveFailures = 0
    /// Back-off level: the number of ejections in a row, after decay.
    public private(set) var level = 0
    /// When the current or last ejection ends; 0 once a success has followed it.
    public private(set) var ejectedUntil: UInt64 = 0
    /// When the last ejection ended (for decay); 0 before any.
    private var lastEjectionEnd: UInt64 = 0

    public init(
        threshold: Int = OutlierDetector.defaultThreshold, baseEjection: UInt64 = OutlierDetector.defaultBaseEjection,
        maxEjection: UInt64 = OutlierDetector.defaultMaxEjection,
        decayPeriod: UInt64 = OutlierDetector.defaultDecayPeriod
    ) {
        precondition(threshold >= 1 && baseEjection > 0 && maxEjection >= baseEjection && decayPeriod > 0)
        self.threshold = threshold
        self.baseEjection = baseEjection
        self.maxEjection = maxEjection
        self.decayPeriod = decayPeriod
    }

    /// Whether the target is ejected at `now`.
    public func isEjected(now: UInt64) -> Bool { now < ejectedUntil }

    /// Whether an ejection happened and no success has been recorded since (the target may
    /// still be ejected, or back on probation).
    public var wasEjected: Bool { ejectedUntil != 0 }

    /// Records a connect failure or 5xx. Returns true when this failure ejected the target.
    /// Failures while ejected (requests already in flight) are ignored. With `allowed` false
    /// (the group is at its ejection limit) nothing is ejected and the count keeps growing, so
    /// the next failure tries again.
    @discardableResult
    public mutating func recordFailure(now: UInt64, allowed: Bool = true) -> Bool {
        guard !isEjected(now: now) else { return false }
        consecutiveFailures += 1
        guard consecutiveFailures >= threshold, allowed else { return false }
        eject(now: now)
        return true
    }

    /// Records a good answer: the failure run ends and a past ejection is over.
    public mutating func recordSuccess() {
        consecutiveFailures = 0
        ejectedUntil = 0
    }

    /// Ejects the target from `now` for the next back-off period and returns its length.
    @discardableResult
    public mutating func eject(now: UInt64) -> UInt64 {
        if level > 0, lastEjectionEnd > 0, now > lastEjectionEnd {
            let periods = (now - lastEjectionEnd) / decayPeriod
            level = periods >= UInt64(level) ? 0 : level - Int(periods)
        }
        level += 1
        let period = backoff(level: level)
        consecutiveFailures = 0
        ejectedUntil = now &+ period
        lastEjectionEnd = ejectedUntil
        return period
    }

    /// The ejection length at back-off `level` (1 = first ejection).
    public func backoff(level: Int) -> UInt64 {
        precondition(level >= 1)
        let shift = min(level - 1, 62)
        let (scaled, overflow) = baseEjection.multipliedReportingOverflow(by: 1 << UInt64(shift))
        return overflow ? maxEjection : min(scaled, maxEjection)
    }

    /// Whether a group of `total` targets with `ejectedCount` ejected may eject one more: at
    /// most `floor(total / 2)` are ever ejected, so a group of one never ejects its only
    /// target and a group of two or three ejects at most one.
    public static func mayEject(ejectedCount: Int, total: Int) -> Bool {
        ejectedCount < total / 2
    }
}
