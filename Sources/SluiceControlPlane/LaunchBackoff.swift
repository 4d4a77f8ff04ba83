/// How long a failed launch waits before the next attempt (SPEC §11): 1 s after the first
/// failure, doubling, at most 30 s.
public enum LaunchBackoff {
    public static let first: UInt64 = 1_000_000_000
    public static let limit: UInt64 = 30_000_000_000

    /// The wait after `failures` failures in a row (0 after none).
    public static func delay(afterFailures failures: Int) -> UInt64 {
        guard failures > 0 else { return 0 }
        // 2^5 s = 32 s already exceeds the limit: no shift past that.
        let shift = min(failures - 1, 5)
        return min(first << UInt64(shift), limit)
    }
}
