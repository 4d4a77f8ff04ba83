import SluiceCore
import Synchronization

/// The live side of one target, shared by every Plan that lists it and by all workers:
/// what is in flight to it, what the data path saw go wrong (passive health checks), and
/// whether its remaining connections must be cut (deregistration delay over).
///
/// Workers update it with single atomic adds; the control thread reads it.
public final class TargetRuntime: Sendable {
    public let group: String
    public let key: String
    /// Open connections (tcp) or requests in flight (http) to this target.
    public let inFlight = Atomic<Int>(0)
    /// Connect failures and 5xx answers in a row, as seen by the workers.
    public let consecutiveFailures = Atomic<Int>(0)
    /// Requests (http) or connections (tcp) sent, ever.
    public let sent = Atomic<UInt64>(0)
    /// Set when draining ends with connections left: workers close them.
    public let evicted = Atomic<Bool>(false)

    /// The target's socket address, parsed once when the target is created (not per Plan).
    public let socketAddress: SocketAddress?
    /// The surge queue of the target's group (the process keeps one per group name, so the
    /// unretained reference stays valid; no reference counting on the per-request check).
    private let surgeRef: Unmanaged<SurgeQueue>

    public init(group: String, key: String, host: String? = nil, port: UInt16 = 0) {
        self.group = group
        self.key = key
        socketAddress = host.flatMap { SocketAddress(host: $0, port: port) }
        surgeRef = Unmanaged.passUnretained(SurgeQueues.shared.queue(for: group))
    }

    @inline(__always)
    func started() {
        inFlight.add(1, ordering: .relaxed)
        sent.add(1, ordering: .relaxed)
    }

    @inline(__always)
    func finished() { inFlight.subtract(1, ordering: .relaxed) }

    /// A request or connection whose slot was already counted (reserved under
    /// `max_per_target`, or handed on from another) starts.
    @inline(__always)
    func startedHeld() { sent.add(1, ordering: .relaxed) }

    /// A request or connection to this target ended: its slot goes to the head of the group's
    /// surge queue when someone waits there (one relaxed load when nobody does), else it is
    /// released.
    @inline(__always)
    func release() {
        if surgeRef._withUnsafeGuaranteedRef({ $0.isEmpty }) { finished() } else { handOn() }
    }

    /// Gives this target's slot (still counted) to the head waiter of the group's queue, or
    /// releases it when the queue is empty after all.
    func handOn() {
        let surge = surgeRef.takeUnretainedValue()
        if let w = surge.popHead() {
            SurgeQueues.shared.post(SurgeHandoff(waiter: w, queue: surge, target: self))
        } else {
            finished()
        }
    }

    /// Takes a slot when fewer than `limit` are in flight: one atomic add, undone when the
    /// target was full.
    @inline(__always)
    func reserve(limit: Int) -> Bool {
        let old = inFlight.wrappingAdd(1, ordering: .relaxed).oldValue
        if old < limit { return true }
        inFlight.subtract(1, ordering: .relaxed)
        return false
    }

    @inline(__always)
    func failed() { consecutiveFailures.add(1, ordering: .relaxed) }

    @inline(__always)
    func succeeded() {
        if consecutiveFailures.load(ordering: .relaxed) != 0 { consecutiveFailures.store(0, ordering: .relaxed) }
    }
}

/// What the control plane decides for one target when it builds a Plan.
public struct TargetInput: Sendable {
    public var address: String
    public var host: String
    public var port: UInt16
    public var zone: String
    /// Weight for new traffic after health, draining, zones, fail-open and slow start (0 = none).
    public var effectiveWeight: Int
    public var runtime: TargetRuntime

    public init(address: String, host: String, port: UInt16, zone: String, effectiveWeight: Int, runtime: TargetRuntime) {
        self.address = address
        self.host = host
        self.port = port
        self.zone = zone
        self.effectiveWeight = effectiveWeight
        self.runtime = runtime
    }
}
