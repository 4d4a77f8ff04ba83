/// What the data-path failure logs share: at most one look per interval at counters the
/// workers bump, and for each key the increase since the last look. The data path only counts;
/// the control loop logs, so a flood of failures is one line per key and interval.
struct CounterLog {
    /// How often the counters are compared.
    static let interval: UInt64 = 10_000_000_000
    private var last: [String: UInt64] = [:]
    private(set) var nextCheck: UInt64 = 0

    /// Whether a look is due at `now`; if so, the next one is an interval later.
    mutating func due(now: UInt64) -> Bool {
        guard now >= nextCheck else { return false }
        nextCheck = now &+ CounterLog.interval
        return true
    }

    /// How much `key`'s counter grew since the last look (0 when it did not).
    mutating func increase(_ key: String, total: UInt64) -> UInt64 {
        let before = last[key] ?? 0
        last[key] = total
        return total > before ? total &- before : 0
    }

    /// The interval as log text.
    static var intervalText: String { "\(interval / 1_000_000_000)s" }
}
