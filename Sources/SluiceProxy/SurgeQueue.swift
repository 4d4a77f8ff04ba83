import SluiceCore
import Synchronization

/// A bounded first-in, first-out ring (pure; unit-tested). Storage grows by doubling up to
/// what is needed and is kept afterwards, so a queue that filled once queues again without
/// allocating. `limit` is checked by `append` only: `prepend` (a waiter put back at the head)
/// may exceed it, and a smaller limit keeps what is already queued.
struct SurgeRing<Element> {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    /// Adds at the tail; false when `count` has reached `limit`.
    mutating func append(_ e: Element, limit: Int) -> Bool {
        guard count < limit else { return false }
        grow()
        storage[index(count)] = e
        count += 1
        return true
    }

    /// Puts `e` back at the head (whatever the limit).
    mutating func prepend(_ e: Element) {
        grow()
        head = head == 0 ? storage.count - 1 : head - 1
        storage[head] = e
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let e = storage[head]
        storage[head] = nil
        head = index(1)
        count -= 1
        return e
    }

    /// Removes the first element matching `match`, keeping the order of the others.
    mutating func remove(where match: (Element) -> Bool) -> Element? {
        var i = 0
        while i < count {
            if let e = storage[index(i)], match(e) {
                // Close the gap from the tail side.
                var j = i
                while j + 1 < count {
                    storage[index(j)] = storage[index(j + 1)]
                    j += 1
                }
                storage[index(count - 1)] = nil
                count -= 1
                return e
            }
            i += 1
        }
        return nil
    }

    /// The elements, head first (tests, diagnostics).
    var elements: [Element] { (0..<count).compactMap { storage[index($0)] } }

    /// Storage slot of the `i`-th element (`i <= count`, `count < storage.count` or empty).
    private func index(_ i: Int) -> Int {
        let n = storage.count
        guard n > 0 else { return 0 }
        let j = head + i
        return j >= n ? j - n : j
    }

    private mutating func grow() {
        guard count == storage.count else { return }
        let old = elements
        let size = Swift.max(8, storage.count * 2)
        storage = Array(repeating: nil, count: size)
        for (i, e) in old.enumerated() { storage[i] = e }
        head = 0
    }
}

/// One request (L7) or connection (L4) waiting in a surge queue: where it lives (worker,
/// layer, slab slot and the slot's generation) and when it came (which also tells one
/// request of a keep-alive connection from the next).
struct SurgeWaiter: Sendable, Equatable {
    enum Layer: UInt8, Sendable { case http, tcp }
    var worker: Int32
    var layer: Layer
    var slot: Int32
    var generation: UInt32
    var since: UInt64
}

/// The surge queue of one target group (SPEC §12), shared by all workers and by every Plan
/// (keyed by group name in `SurgeQueues`, so a reload keeps who waits).
///
/// The hot path only reads `length` (relaxed): a request queues when it is non-zero (first
/// in, first out: it does not overtake those waiting), and a worker that frees a slot of the
/// group's targets hands the slot on instead of releasing it when it is non-zero. Queueing,
/// popping the head and removing a waiter take the mutex; they happen only under pressure.
public final class SurgeQueue: Sendable {
    public let group: String
    let length = Atomic<Int>(0)
    private let ring = Mutex(SurgeRing<SurgeWaiter>())

    init(group: String) { self.group = group }

    /// Waiters now (what `sluice_surge_queue_length` and target tracking read).
    public var count: Int { length.load(ordering: .relaxed) }

    @inline(__always)
    var isEmpty: Bool { length.load(ordering: .relaxed) == 0 }

    /// Adds `w` at the tail; false when the queue holds `limit` waiters already.
    func enqueue(_ w: SurgeWaiter, limit: Int) -> Bool {
        ring.withLock { r in
            guard r.append(w, limit: limit) else { return false }
            length.store(r.count, ordering: .relaxed)
            return true
        }
    }

    /// Puts `w` back at the head (it was popped, but the slot it was given is gone).
    func requeue(_ w: SurgeWaiter) {
        ring.withLock { r in
            r.prepend(w)
            length.store(r.count, ordering: .relaxed)
        }
    }

    func popHead() -> SurgeWaiter? {
        ring.withLock { r in
            let w = r.popFirst()
            length.store(r.count, ordering: .relaxed)
            return w
        }
    }

    /// Removes `w` (timed out, or its client left). False when it is not queued any more: a
    /// handoff for it is on its way, and the receiving worker passes the slot on.
    func remove(_ w: SurgeWaiter) -> Bool {
        ring.withLock { r in
            let found = r.remove { $0 == w } != nil
            length.store(r.count, ordering: .relaxed)
            return found
        }
    }
}

/// A slot of `target` (its in-flight count already taken) handed to a waiter of `queue`.
struct SurgeHandoff: Sendable {
    var waiter: SurgeWaiter
    var queue: SurgeQueue
    var target: TargetRuntime
}

/// The process's surge queues by group name (created on first use, kept for the life of the
/// process), and each worker's mailbox of handoffs with the eventfd that wakes it.
public final class SurgeQueues: Sendable {
    public static let shared = SurgeQueues()

    private let queues = Mutex<[String: SurgeQueue]>([:])
    private let mail = Mutex<[[SurgeHandoff]]>([])
    private let wakeFds = Mutex<[Int32]>([])

    /// The queue of group `name` (the same object for the life of the process).
    public func queue(for name: String) -> SurgeQueue {
        queues.withLock { q in
            if let existing = q[name] { return existing }
            let created = SurgeQueue(group: name)
            q[name] = created
            return created
        }
    }

    /// Waiters in group `name`'s queue (0 when it has none).
    public func length(group name: String) -> Int {
        queues.withLock { $0[name] }?.count ?? 0
    }

    /// The workers' eventfds (a Runtime at start).
    func register(wakeFds fds: [Int32]) {
        wakeFds.withLock { $0 = fds }
        mail.withLock { m in
            while m.count < fds.count { m.append([]) }
        }
    }

    /// Hands a slot to the worker of `h.waiter` and wakes it.
    func post(_ h: SurgeHandoff) {
        let w = Int(truncatingIfNeeded: h.waiter.worker)
        let fd: Int32 = wakeFds.withLock { w >= 0 && w < $0.count ? $0[w] : -1 }
        let posted = mail.withLock { m -> Bool in
            guard w >= 0, w < m.count else { return false }
            m[w].append(h)
            return true
        }
        if posted && fd >= 0 { Posix.signalEventfd(fd) } else { h.target.finished() }
    }

    /// Takes worker `w`'s handoffs into `into` (cleared first; its capacity is kept).
    func take(worker w: Int, into: inout [SurgeHandoff]) {
        into.removeAll(keepingCapacity: true)
        mail.withLock { m in
            guard w >= 0, w < m.count, !m[w].isEmpty else { return }
            swap(&into, &m[w])
        }
    }
}
