import Dispatch
import Synchronization

/// How much the control and metrics servers give their clients: each connection is served by one
/// thread, so these numbers bound both threads and descriptors.
///
/// At the bound:
/// - **Ordinary connections** (`maxConnections`): the accept thread stops accepting until a slot frees.
///   New connections wait in the listen backlog (64), in order, and are served as slots free; the kernel
///   refuses connections past the backlog. No thread or descriptor is spent on a waiting connection.
/// - **Slow clients**: a request (head and body) must arrive within `requestTimeout` of the moment the
///   server starts waiting for it (the connection's start, or the end of the previous answer on a
///   keep-alive connection). A client that is slower, or idle, is disconnected, so a slot is held at most
///   that long by a client that sends nothing useful; a slowloris cannot keep it.
/// - **Long-lived streams** (`GET /v1/events`, `DELETE …?wait=true`): once such a request has arrived, its
///   connection moves from an ordinary slot to one of `maxStreams` stream slots, so streams never hold
///   ordinary slots. When every stream slot is taken, the request is answered at once with
///   `503 {"error":{"code":"busy",…}}` and the connection is closed. After a `deregister --wait` answer, a
///   keep-alive connection goes back to a request slot if one is free, and is closed otherwise.
public struct ConnectionLimits: Sendable, Equatable {
    /// Connections served at once, requests not yet streaming.
    public var maxConnections: Int
    /// Event streams and `deregister --wait` requests served at once.
    public var maxStreams: Int
    /// Longest wait for a whole request.
    public var requestTimeout: Duration

    public init(maxConnections: Int, maxStreams: Int, requestTimeout: Duration) {
        precondition(maxConnections >= 1 && maxStreams >= 0, "at least one connection")
        precondition(requestTimeout > .zero, "a request timeout must be positive")
        self.maxConnections = maxConnections
        self.maxStreams = maxStreams
        self.requestTimeout = requestTimeout
    }

    /// The control socket's: a handful of operators and scripts, a few followers of `/v1/events`.
    public static let control = ConnectionLimits(maxConnections: 32, maxStreams: 32, requestTimeout: .seconds(10))
    /// The metrics port's: scrapers, one request per connection; no streams.
    public static let metrics = ConnectionLimits(maxConnections: 16, maxStreams: 0, requestTimeout: .seconds(10))

    /// `requestTimeout` in milliseconds, at least 1 (clamped, never trapping, for any `Duration`).
    var requestTimeoutMilliseconds: Int {
        let (seconds, attoseconds) = requestTimeout.components
        guard seconds < Int64(Int32.max) else { return Int(Int32.max) * 1000 }
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}

/// Counts of connections in use against `ConnectionLimits`; thread-safe. The accept thread takes request
/// slots (and waits for one when full); connection threads move between kinds and give slots back.
final class ConnectionSlots: Sendable {
    enum Kind: Sendable { case request, stream }

    struct Counts: Sendable, Equatable {
        var request = 0
        var stream = 0
        /// Highest `request` and `stream` seen, for tests and diagnostics.
        var peakRequest = 0
        var peakStream = 0
        /// The accept thread is blocked in `waitForFreeSlot`: the next release wakes it.
        fileprivate var acceptWaiting = false
    }

    let limits: ConnectionLimits
    private let inUse = Mutex(Counts())
    /// Signalled only when the accept thread waits, so at most one signal is ever left over.
    private let freed = DispatchSemaphore(value: 0)

    init(_ limits: ConnectionLimits) {
        self.limits = limits
    }

    /// Takes a request slot when one is free.
    func acquireRequest() -> Bool {
        inUse.withLock { count in
            guard count.request < limits.maxConnections else { return false }
            count.request += 1
            count.peakRequest = max(count.peakRequest, count.request)
            return true
        }
    }

    /// Moves a connection from its request slot to a stream slot; false (and the request slot kept)
    /// when every stream slot is taken.
    func promoteToStream() -> Bool {
        let (moved, wake) = inUse.withLock { count -> (Bool, Bool) in
            guard count.stream < limits.maxStreams else { return (false, false) }
            count.stream += 1
            count.request -= 1
            count.peakStream = max(count.peakStream, count.stream)
            return (true, count.wakeAcceptor())
        }
        if wake { freed.signal() }
        return moved
    }

    /// Moves a connection from its stream slot back to a request slot (a keep-alive connection after a
    /// `deregister --wait` answer); false (and the stream slot kept) when every request slot is taken.
    func demoteToRequest() -> Bool {
        inUse.withLock { count in
            guard count.request < limits.maxConnections else { return false }
            precondition(count.stream > 0, "demoted a stream slot never taken")
            count.stream -= 1
            count.request += 1
            count.peakRequest = max(count.peakRequest, count.request)
            return true
        }
    }

    func release(_ kind: Kind) {
        let wake = inUse.withLock { count -> Bool in
            switch kind {
            case .request:
                precondition(count.request > 0, "released a request slot never taken")
                count.request -= 1
                return count.wakeAcceptor()
            case .stream:
                precondition(count.stream > 0, "released a stream slot never taken")
                count.stream -= 1
                return false
            }
        }
        if wake { freed.signal() }
    }

    /// Returns once a request slot is free, or after `milliseconds` (so the caller can look at its stop
    /// flag).
    /// One turn of a bounded accept loop: waits for a free request slot (at the bound,
    /// connections wait in the listen backlog), then for a connection on `listener`. Returns
    /// the accepted descriptor holding a request slot, or nil (nothing yet, or `stopping`),
    /// in which case no slot is held. Shared by the control and metrics servers.
    func acceptBounded(_ listener: Int32, pollMilliseconds: Int32, stopping: () -> Bool) -> Int32? {
        guard acquireRequest() else {
            waitForFreeSlot(milliseconds: pollMilliseconds)
            return nil
        }
        guard ControlSocket.waitReadable(listener, milliseconds: pollMilliseconds), !stopping(),
              let fd = ControlSocket.accept(listener)
        else {
            release(.request)  // nobody waits on it: the accept thread is this one
            return nil
        }
        return fd
    }

    func waitForFreeSlot(milliseconds: Int32) {
        let full = inUse.withLock { count -> Bool in
            guard count.request >= limits.maxConnections else { return false }
            count.acceptWaiting = true
            return true
        }
        guard full else { return }
        _ = freed.wait(timeout: .now() + .milliseconds(Int(milliseconds)))
        inUse.withLock { $0.acceptWaiting = false }
    }

    /// Slots in use now, and the peaks.
    var counts: Counts { inUse.withLock { $0 } }
}

extension ConnectionSlots.Counts {
    /// Whether a release must wake the accept thread; clears the flag so one release wakes it once.
    fileprivate mutating func wakeAcceptor() -> Bool {
        guard acceptWaiting else { return false }
        acceptWaiting = false
        return true
    }
}
