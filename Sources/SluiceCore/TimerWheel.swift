/// A hashed timer wheel of opaque 64-bit tokens (Varghese & Lauck), one per worker.
///
/// Time is in nanoseconds of an injected monotonic clock. A token scheduled at `deadline`
/// lands in slot `ceil(deadline / tick) % slotCount`; deadlines more than one turn away
/// stay in their slot and are re-checked each turn. Cancelling is lazy: the owner ignores a
/// token that fires for an object that no longer wants it (a generation mismatch). Slots
/// keep their capacity, so steady state schedules without allocating.
public struct TimerWheel {
    struct Entry {
        var token: UInt64
        var deadline: UInt64
    }

    static let reservedPerSlot = 8
    public let tick: UInt64
    private var slots: [[Entry]]
    private let mask: Int
    /// Last tick whose slot has been processed.
    private var currentTick: UInt64
    public private(set) var count = 0

    /// `slotCount` is rounded up to a power of two.
    public init(tick: UInt64 = 10_000_000, slotCount: Int = 1024, now: UInt64) {
        precondition(tick > 0 && slotCount > 0)
        var n = 1
        while n < slotCount { n <<= 1 }
        self.tick = tick
        // Reserve a little room in every slot up front, so a new load pattern does not make
        // each slot allocate the first time the wheel passes it (one turn is 10 s).
        slots = (0..<n).map { _ in
            var a: [Entry] = []
            a.reserveCapacity(TimerWheel.reservedPerSlot)
            return a
        }
        mask = n - 1
        currentTick = now / tick
    }

    /// Schedules `token` to fire at the first `advance` at or after `deadline`.
    public mutating func schedule(_ token: UInt64, at deadline: UInt64) {
        var t = (deadline + tick - 1) / tick
        if t <= currentTick { t = currentTick + 1 }
        slots[Int(t & UInt64(mask))].append(Entry(token: token, deadline: deadline))
        count += 1
    }

    /// Moves time to `now` and appends every due token to `fired` (which the caller reuses).
    public mutating func advance(to now: UInt64, into fired: inout [UInt64]) {
        let target = now / tick
        guard target > currentTick else { return }
        // Past a whole turn every slot is visited once; that is enough.
        let steps = min(target - currentTick, UInt64(slots.count))
        var t = target - steps + 1
        while t <= target {
            let s = Int(t & UInt64(mask))
            var i = 0
            while i < slots[s].count {
                let e = slots[s][i]
                if e.deadline <= now {
                    fired.append(e.token)
                    slots[s][i] = slots[s][slots[s].count - 1]
                    slots[s].removeLast()
                    count -= 1
                } else {
                    i += 1
                }
            }
            t += 1
        }
        currentTick = target
    }

    /// Milliseconds until the next tick boundary when anything is scheduled (the longest an
    /// `epoll_wait` may sleep), or -1 when the wheel is empty.
    public func nextTimeoutMillis(now: UInt64) -> Int32 {
        guard count > 0 else { return -1 }
        let next = (now / tick + 1) * tick
        return Int32(max(1, (next - now + 999_999) / 1_000_000))
    }
}
