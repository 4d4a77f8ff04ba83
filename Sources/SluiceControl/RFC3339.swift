#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 3339 timestamps (UTC, millisecond precision) without Foundation's formatter cost or locale traps.
public enum RFC3339 {
    /// `2025-01-02T03:04:05.678Z` for a time in seconds since the Unix epoch.
    /// Times outside years 0001–9999 (or not finite) are clamped to that range: `time_t(_:)` of such
    /// a `Double` would trap, and RFC 3339 has four-digit years.
    public static func format(secondsSinceEpoch: Double) -> String {
        let clamped = secondsSinceEpoch.isNaN ? 0 : min(max(secondsSinceEpoch, minSeconds), maxSeconds)
        var whole = time_t(clamped.rounded(.down))
        // In 0...1000: `clamped - whole` is in [0, 1).
        var millis = Int(((clamped - Double(whole)) * 1000).rounded())
        if millis >= 1000 {
            whole += 1
            millis -= 1000
        }
        var parts = tm()
        gmtime_r(&whole, &parts)
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(millis, 3) + "Z"
    }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
    static let minSeconds: Double = -62_135_596_800
    static let maxSeconds: Double = 253_402_300_799.999

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// Wall-clock seconds since the epoch (CLOCK_REALTIME).
func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC), for timeouts.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
