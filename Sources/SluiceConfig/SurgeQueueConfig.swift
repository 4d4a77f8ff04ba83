/// `surge_queue:` of a target group (SPEC §12): requests (L7) or connections (L4) that find
/// every eligible target at `max_per_target`, or no target at all, wait here first in,
/// first out.
public struct SurgeQueueConfig: Sendable, Equatable {
    /// Waiting places; 0 = no queue (the default).
    public var size: Int
    /// How long one may wait, in nanoseconds (1ms ... 1h, default 5s).
    public var timeout: UInt64

    public init(size: Int = 0, timeout: UInt64 = SurgeQueueConfig.defaultTimeout) {
        self.size = size
        self.timeout = timeout
    }

    public static let defaultTimeout: UInt64 = 5 * Nanoseconds.second
    /// `size:` and `max_per_target:` range.
    public static let sizes = 0...1_000_000
    /// `timeout:` range.
    public static let timeouts = Nanoseconds.millisecond...(3_600 * Nanoseconds.second)
}
