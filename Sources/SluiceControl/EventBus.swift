import Dispatch
import Glibc
import Synchronization

/// Fan-out of `ControlEvent`s to any number of subscribers (the `/v1/events` streams).
///
/// `publish` never blocks on a subscriber: each subscriber has its own queue, and one that falls more
/// than `EventBus.maxBacklog` events behind loses its oldest events (counted in `dropped`).
public final class EventBus: Sendable {
    /// Events a subscriber may have pending before the oldest are dropped.
    public static let maxBacklog = 10_000

    private struct State {
        var nextID: UInt64 = 0
        var subscribers: [UInt64: EventSubscription] = [:]
        /// Events published so far: the sequence part of event ids.
        var published: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Synchronous sinks (event rules), called in `publish` in order.
    private let sinks = Mutex<[@Sendable (ControlEvent) -> Void]>([])
    /// Held across id assignment, sinks and fan-out while a sink is installed, so ids, sink calls and
    /// every subscriber see events in one order.
    private let publishing = Mutex(())
    /// Makes event ids unique across restarts: the wall-clock second and millisecond the bus was made, in hex.
    private let idPrefix: String

    public init() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let millis = String(ts.tv_nsec / 1_000_000, radix: 16)  // 0 ..< 0x3e8: three digits at most
        idPrefix = String(ts.tv_sec, radix: 16) + String(repeating: "0", count: max(0, 3 - millis.count)) + millis
    }

    /// Delivers `event` to every current subscriber, with an `id` assigned (`{start}-{sequence}`) when it
    /// has none. Safe from any thread; O(subscribers). Returns the event as delivered.
    @discardableResult
    public func publish(_ event: ControlEvent) -> ControlEvent {
        let current = sinks.withLock { $0 }
        guard !current.isEmpty else { return deliver(event) }
        return publishing.withLock { _ in
            let delivered = deliver(event, fanOut: false)
            for sink in current { sink(delivered) }
            fanOut(delivered)
            return delivered
        }
    }

    /// Adds a sink that sees every event published from now on, synchronously inside `publish` once
    /// the event has its id, before any subscriber gets it; `publish` returns only when the sink did.
    /// A sink is never dropped behind the way a subscriber can be: it must be quick enough for the
    /// publishing thread (event rules append and fsync — control threads only publish).
    public func addSink(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        sinks.withLock { $0.append(sink) }
    }

    private func fanOut(_ event: ControlEvent) {
        let targets = state.withLock { Array($0.subscribers.values) }
        for subscriber in targets { subscriber.enqueue(event) }
    }

    private func deliver(_ event: ControlEvent, fanOut: Bool = true) -> ControlEvent {
        var event = event
        let (targets, sequence) = state.withLock { state in
            state.published &+= 1
            return (Array(state.subscribers.values), state.published)
        }
        if event.id == nil { event.id = "\(idPrefix)-\(sequence)" }
        guard fanOut else { return event }
        for subscriber in targets {
            subscriber.enqueue(event)
        }
        return event
    }

    /// A new subscription that receives every event published from now on.
    public func subscribe() -> EventSubscription {
        state.withLock { state in
            state.nextID += 1
            let subscription = EventSubscription(id: state.nextID, bus: self)
            state.subscribers[state.nextID] = subscription
            return subscription
        }
    }

    /// Stops delivery to `subscription` and wakes a thread blocked in its `next` (which then returns nil).
    public func unsubscribe(_ subscription: EventSubscription) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: subscription.id) }
        subscription.close()
    }

    /// Number of live subscriptions.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}

/// One subscriber's queue. `next(timeout:)` is meant for one consuming thread.
public final class EventSubscription: Sendable {
    private struct Queue {
        var items: [ControlEvent] = []
        var head = 0
        var dropped: UInt64 = 0
        var closed = false

        var count: Int { items.count - head }

        mutating func popFirst() -> ControlEvent? {
            guard head < items.count else { return nil }
            let event = items[head]
            head += 1
            // Compact once the consumed prefix dominates, so the array does not grow forever.
            if head >= 1024 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return event
        }
    }

    let id: UInt64
    private weak let bus: EventBus?
    private let queue = Mutex(Queue())
    // One signal per enqueue (and one on close); `next` loops, so surplus signals left by dropped
    // events only cause an extra empty check.
    private let ready = DispatchSemaphore(value: 0)

    init(id: UInt64, bus: EventBus) {
        self.id = id
        self.bus = bus
    }

    func enqueue(_ event: ControlEvent) {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            queue.items.append(event)
            if queue.count > EventBus.maxBacklog {
                _ = queue.popFirst()
                queue.dropped += 1
            }
            return true
        }
        if accepted { ready.signal() }
    }

    func close() {
        queue.withLock { $0.closed = true }
        ready.signal()
    }

    /// The next event, blocking up to `timeout` seconds (nil: forever). Returns nil on timeout or once
    /// unsubscribed and drained.
    public func next(timeout: Double? = nil) -> ControlEvent? {
        let deadline: DispatchTime? = timeout.map { .now() + max(0, $0) }
        while true {
            let (event, closed) = queue.withLock { queue in (queue.popFirst(), queue.closed) }
            if let event { return event }
            if closed { return nil }
            if let deadline {
                if ready.wait(timeout: deadline) == .timedOut { return nil }
            } else {
                ready.wait()
            }
        }
    }

    /// Events lost because this subscriber fell behind by more than `EventBus.maxBacklog`.
    public var dropped: UInt64 { queue.withLock { $0.dropped } }

    /// Events waiting to be read.
    public var pending: Int { queue.withLock { $0.count } }

    /// Same as `bus.unsubscribe(self)`.
    public func cancel() {
        if let bus { bus.unsubscribe(self) } else { close() }
    }
}
