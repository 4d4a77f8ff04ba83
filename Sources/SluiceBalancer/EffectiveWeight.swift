/// The unit of the weights the balancers run on.
///
/// Configured weights are 0...999 (SPEC §2). The control plane turns them into *effective*
/// weights after health, zones, fail-open and slow start, in units of 1/100 of a configured
/// weight, so a weight-1 target in slow start can still ramp from 10 % to 100 % in 90 steps
/// and zone routing can express fine shares. Every balancer accepts `0...max`; anything
/// outside is clamped (never a trap).
public enum EffectiveWeight {
    /// Effective units per configured weight unit.
    public static let unit = 100
    /// The largest configured weight (SPEC §2: 0...999).
    public static let maxConfigured = 999
    /// The largest effective weight.
    public static let max = maxConfigured * unit

    /// A configured weight in effective units (clamped to the valid range first).
    @inlinable
    public static func from(configured w: Int) -> Int {
        Swift.min(Swift.max(w, 0), maxConfigured) * unit
    }

    /// `w` clamped to `0...max`.
    @inlinable
    public static func clamp(_ w: Int) -> Int {
        Swift.min(Swift.max(w, 0), max)
    }
}
