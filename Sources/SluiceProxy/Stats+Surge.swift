/// Per-group surge-queue counters of one worker (`sluice_surge_queue_overflow_total`,
/// `sluice_surge_queue_wait_seconds`), after the per-listener request columns.
extension StatsBlock {
    /// Per-group layout: wait histogram (`buckets.count` + 1 for +Inf), its sum in µs, its
    /// count, then overflows.
    static let perGroup = 16
    static let surgeWaitSumMicros = buckets.count + 1
    static let surgeWaitCount = buckets.count + 2
    static let surgeOverflow = buckets.count + 3

    @inline(__always)
    static func groupSlot(_ group: Int, _ field: Int) -> Int { groupBase + group * perGroup + field }

    /// A waiter left group `group`'s queue after `nanos` (dispatched, timed out or gone).
    func surgeWait(group: Int, nanos: UInt64) {
        guard group >= 0, group < StatsBlock.maxGroups else { return }
        let seconds = Double(nanos) / 1e9
        var b = 0
        while b < StatsBlock.buckets.count && seconds > StatsBlock.buckets[b] { b += 1 }
        add(StatsBlock.groupSlot(group, b))
        add(StatsBlock.groupSlot(group, StatsBlock.surgeWaitSumMicros), nanos / 1000)
        add(StatsBlock.groupSlot(group, StatsBlock.surgeWaitCount))
    }

    /// A request or connection of group `group` found its queue full.
    func surgeOverflowed(group: Int) {
        guard group >= 0, group < StatsBlock.maxGroups else { return }
        add(StatsBlock.groupSlot(group, StatsBlock.surgeOverflow))
    }

    /// A waiter timed out on listener `listener`.
    func surgeTimedOut(listener: Int) {
        guard listener >= 0, listener < StatsBlock.maxListeners else { return }
        add(StatsBlock.listenerSlot(listener, StatsBlock.surgeTimeout))
    }

    public func surgeOverflows(group g: Int) -> UInt64 {
        guard g >= 0, g < StatsBlock.maxGroups else { return 0 }
        return load(StatsBlock.groupSlot(g, StatsBlock.surgeOverflow))
    }

    public func surgeTimeouts(listener l: Int) -> UInt64 {
        guard l >= 0, l < StatsBlock.maxListeners else { return 0 }
        return load(StatsBlock.listenerSlot(l, StatsBlock.surgeTimeout))
    }

    /// Wait histogram of group `g`: bucket counts (not cumulative; the last is +Inf), sum in
    /// µs, count.
    public func surgeWaits(group g: Int) -> (buckets: [UInt64], sumMicros: UInt64, count: UInt64) {
        guard g >= 0, g < StatsBlock.maxGroups else { return (Array(repeating: 0, count: StatsBlock.buckets.count + 1), 0, 0) }
        return ((0...StatsBlock.buckets.count).map { load(StatsBlock.groupSlot(g, $0)) },
                load(StatsBlock.groupSlot(g, StatsBlock.surgeWaitSumMicros)),
                load(StatsBlock.groupSlot(g, StatsBlock.surgeWaitCount)))
    }
}
