/// What a rule's outbox holds: events waiting (in order) and dead letters. Built by replaying the
/// file's records at start and kept current by applying each record as it is appended, so the
/// file and memory follow the same rules. Pure.
public struct OutboxState: Sendable, Equatable {
    /// An event waiting for delivery.
    public struct Pending: Sendable, Equatable {
        public var id: String
        public var json: [UInt8]
    }

    /// An event that failed every attempt.
    public struct DeadLetter: Sendable, Equatable {
        public var id: String
        public var json: [UInt8]
        public var attempts: Int
        public var failedAt: String
        public var error: String
    }

    private var queue: [Pending] = []
    private var head = 0
    public private(set) var dead: [DeadLetter] = []
    /// Records applied since the file was last written whole (the file's length in records).
    public private(set) var records = 0
    /// Dead letters kept per rule; the oldest go beyond it.
    public static let maxDeadLetters = 10_000

    public init() {}

    /// Replays `records` from an empty state.
    public init(replaying records: [OutboxRecord]) {
        for r in records { apply(r) }
    }

    public var pendingCount: Int { queue.count - head }
    /// The next event to deliver.
    public var first: Pending? { head < queue.count ? queue[head] : nil }
    public var pending: ArraySlice<Pending> { queue[head...] }

    public mutating func apply(_ record: OutboxRecord) {
        records += 1
        switch record {
        case .event(let id, let json):
            queue.append(Pending(id: id, json: json))
        case .delivered(let id):
            _ = takePending(id)
        case .dead(let id, let attempts, let failedAt, let error):
            guard let p = takePending(id) else { return }
            dead.append(DeadLetter(id: id, json: p.json, attempts: attempts, failedAt: failedAt, error: error))
            if dead.count > Self.maxDeadLetters { dead.removeFirst(dead.count - Self.maxDeadLetters) }
        case .revived(let id):
            if let i = dead.firstIndex(where: { $0.id == id }) { dead.remove(at: i) }
        }
    }

    /// Removes the first pending event with `id` (normally the first of all).
    private mutating func takePending(_ id: String) -> Pending? {
        guard let i = queue[head...].firstIndex(where: { $0.id == id }) else { return nil }
        let p = queue[i]
        if i == head {
            head += 1
            if head >= 1024 && head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
        } else {
            queue.remove(at: i)
        }
        return p
    }

    /// Records that still matter: each pending event, each dead letter (event + mark).
    public var liveRecords: Int { pendingCount + 2 * dead.count }

    /// Whether rewriting the file would pay: delivered records dominate it.
    public var wantsCompaction: Bool { records >= 256 && records > 4 * liveRecords }

    /// The records of a rewritten file: dead letters first (event, then its mark), then pending events.
    public func compacted() -> [OutboxRecord] {
        var out: [OutboxRecord] = []
        for d in dead {
            out.append(.event(id: d.id, json: d.json))
            out.append(.dead(id: d.id, attempts: d.attempts, failedAt: d.failedAt, error: d.error))
        }
        for p in pending { out.append(.event(id: p.id, json: p.json)) }
        return out
    }

    /// After the file was rewritten with `compacted()`.
    public mutating func didCompact() { records = liveRecords }
}
