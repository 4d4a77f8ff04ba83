/// `min_healthy` of a group, in the balancer's terms.
public enum MinHealthyRule: Sendable, Equatable {
    /// At least this many healthy targets.
    case count(Int)
    /// At least this percentage of the registered targets, rounded up (50% of 3 is 2).
    case percent(Int)

    /// The number of healthy targets needed out of `registered`.
    public func required(registered: Int) -> Int {
        switch self {
        case .count(let count): count
        case .percent(let percent): (max(0, percent) * max(0, registered) + 99) / 100
        }
    }
}

/// Fail-open (SPEC §4): when fewer targets than `min_healthy` are healthy, traffic goes to all
/// registered, non-draining targets, as ELB does.
public enum FailOpen {
    /// Whether a group with `healthy` of `registered` (non-draining) targets fails open. A
    /// group with no registered target never does (there is nothing to open to). `healthy`
    /// counts the targets that would get traffic anyway (healthy or `unavailable`, not ejected).
    public static func engaged(healthy: Int, registered: Int, minHealthy: MinHealthyRule) -> Bool {
        registered > 0 && healthy < minHealthy.required(registered: registered)
    }
}
