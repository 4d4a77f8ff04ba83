/// The watch's bookkeeping, sans-I/O: where to resume, what to hand the caller for each stream
/// message, and what the loop does next. Tested without etcd.
struct EtcdWatchState: Sendable {
    enum Next: Sendable, Equatable {
        /// Keep reading the stream.
        case read
        /// Drop the stream and reconnect after back-off.
        case reconnect(String)
        /// The watch is over (its start was compacted).
        case end
    }

    /// The revision to (re)start from: one past the last delivered; 0 = from now (no stream
    /// created yet with start 0).
    private(set) var next: Int64
    /// Whether the last stream is up; `.disconnected` is delivered once per loss.
    private(set) var connected = true

    init(startRevision: Int64) {
        next = max(startRevision, 0)
    }

    /// A stream could not be set up or was lost: the event to deliver, if this is a new loss.
    mutating func lost(_ reason: String) -> EtcdWatchEvent? {
        guard connected else { return nil }
        connected = false
        return .disconnected(reason: reason)
    }

    /// Applies one message; appends what to deliver to `out`.
    mutating func apply(_ m: EtcdWatchMessage, into out: inout [EtcdWatchEvent]) -> Next {
        switch m {
        case .created(let revision):
            connected = true
            if next == 0 { next = Self.successor(revision) }
            // Everything before `next` has been delivered (or was before the start asked for).
            out.append(.progress(revision: next - 1))
            return .read
        case .progress(let revision):
            if revision >= next {
                next = Self.successor(revision)
            }
            out.append(.progress(revision: revision))
            return .read
        case .events(let events):
            for e in events {
                let rev: Int64
                switch e {
                case .put(let kv): rev = kv.modRevision
                case .delete(_, let modRevision): rev = modRevision
                default: continue
                }
                // Already delivered before a reconnect: never twice.
                guard rev >= next || next == 0 else { continue }
                out.append(e)
                next = max(next, Self.successor(rev))
            }
            return .read
        case .canceled(let compactRevision, let reason):
            if compactRevision > 0 {
                out.append(.compacted(compactRevision: compactRevision))
                return .end
            }
            return .reconnect("watch cancelled by etcd: \(reason.isEmpty ? "no reason given" : reason)")
        case .error(let code, let message):
            return .reconnect("etcd error \(code): \(message)")
        }
    }

    /// `revision + 1` without overflow (a hostile revision of Int64.max stays there).
    private static func successor(_ revision: Int64) -> Int64 {
        let (r, overflow) = max(revision, 0).addingReportingOverflow(1)
        return overflow ? .max : r
    }
}
