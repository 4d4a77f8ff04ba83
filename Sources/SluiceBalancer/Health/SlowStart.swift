/// Slow start (SPEC §4): a target that turns healthy while others are healthy ramps its
/// effective weight linearly from 10% to 100% over the window.
public enum SlowStart {
    /// The weight at `now` of a target of weight `base` that turned healthy at `since`:
    /// `base × (10% + 90% × elapsed / window)`, rounded down, at least 1 while `base > 0`;
    /// `base` once the window has passed or when `window` is 0 (off).
    public static func weight(base: Int, since: UInt64, now: UInt64, window: UInt64) -> Int {
        guard base > 0 else { return 0 }
        guard window > 0, window <= UInt64.max / 10, now < since &+ window, since &+ window > since else {
            return base
        }
        let elapsed = now > since ? now - since : 0
        // base × (window + 9 × elapsed) / (10 × window), without overflow.
        let numerator = UInt64(base).multipliedFullWidth(by: window + 9 * elapsed)
        let (quotient, _) = (10 * window).dividingFullWidth(numerator)
        return max(1, Int(quotient))
    }

    /// Whether a target that turned healthy at `since` is still ramping at `now`.
    public static func isRamping(since: UInt64, now: UInt64, window: UInt64) -> Bool {
        window > 0 && now >= since && now - since < window
    }
}
