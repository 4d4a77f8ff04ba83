import SluiceCore
import SluiceRegistry
import Synchronization

/// Leader election for a fleet-wide singleton (the scaling loop, SPEC §11): whoever holds
/// `key` (`{prefix}/leader/scaling`), bound to its own lease, leads. Acquired with a
/// create-if-absent transaction, renewed at ttl/3 on a thread of its own, released on `stop`;
/// when the holder dies its lease expires, the key goes with it and another candidate takes
/// over at its next attempt (within ttl/3 of the expiry).
///
/// Errs on the side of no leader: a candidate that cannot confirm its hold (etcd unreachable,
/// lease expired, key no longer on its lease) steps down at once.
public final class FleetLeader: Sendable {
    struct State: Sendable {
        var lease: Int64?
        var leading = false
        var stopped = false
    }

    let client: EtcdClient
    public let key: String
    public let identity: String
    let ttlSeconds: Int64
    let onChange: @Sendable (Bool) -> Void
    let state = Mutex(State())
    let wake: Int32
    let thread = Mutex<WorkerThread?>(nil)

    /// `onChange(true)` when this candidate becomes leader, `onChange(false)` when it stops
    /// being one; called on the election's thread.
    public init(client: EtcdClient, key: String, identity: String, ttlSeconds: Int64,
                onChange: @escaping @Sendable (Bool) -> Void = { _ in }) throws {
        self.client = client
        self.key = key
        self.identity = identity
        self.ttlSeconds = max(1, min(ttlSeconds, 3600))
        self.onChange = onChange
        wake = try Posix.eventfd()
    }

    deinit { Posix.close(wake) }

    public var isLeader: Bool { state.withLock { $0.leading } }

    public func start() throws {
        let t = try WorkerThread(name: "leader") { [self] in run() }
        thread.withLock { $0 = t }
    }

    /// Stops campaigning; a leader releases the key (and its lease) so another takes over now.
    public func stop() {
        state.withLock { $0.stopped = true }
        Posix.signalEventfd(wake)
        thread.withLock { t in
            t?.join()
            t = nil
        }
        let lease = state.withLock { s in
            defer { s.lease = nil }
            return s.lease
        }
        if let lease {
            _ = try? client.txn(EtcdTxn(compare: [EtcdCompare(key: key, .lease(lease), .equal)], success: [.delete(key)]))
            try? client.revokeLease(lease)
        }
        set(false)
    }

    private func set(_ leading: Bool) {
        let changed = state.withLock { s -> Bool in
            defer { s.leading = leading }
            return s.leading != leading
        }
        if changed { onChange(leading) }
    }

    private func run() {
        let interval = UInt64(clamping: ttlSeconds) * 1_000_000_000 / 3
        while !state.withLock({ $0.stopped }) {
            do throws(EtcdError) {
                try attempt()
            } catch {
                set(false)
                if case .server(let code, _) = error, code == EtcdError.codeNotFound {
                    state.withLock { $0.lease = nil }
                }
            }
            Posix.waitReadable(wake, timeoutNanos: interval)
            Posix.drainEventfd(wake)
        }
    }

    /// One round: renew the lease (granting one if needed), then hold or try to take the key.
    func attempt() throws(EtcdError) {
        var lease = state.withLock { $0.lease }
        if let l = lease, try client.keepAlive(lease: l) <= 0 {
            set(false)
            lease = nil
        }
        if lease == nil {
            let l = try client.grantLease(ttl: ttlSeconds)
            state.withLock { $0.lease = l }
            lease = l
        }
        guard let lease else { return }
        let result = try client.txn(EtcdTxn(
            compare: [EtcdCompare(key: key, .createRevision(0), .equal)],
            success: [.put(key, Array(identity.utf8), lease: lease)],
            failure: [.range(key)]))
        if result.succeeded {
            set(true)
            return
        }
        // Held: by us (our lease) or by another candidate.
        var ours = false
        if case .range(let r)? = result.results.first, let kv = r.kvs.first { ours = kv.lease == lease }
        set(ours)
    }
}
