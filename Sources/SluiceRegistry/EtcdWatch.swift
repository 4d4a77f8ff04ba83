internal import SluiceCore
internal import SluiceHTTP
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A running watch (`EtcdClient.watch`): a thread that holds one streamed `/v3/watch` answer,
/// hands its events to the callback, reconnects with back-off (100 ms doubling to 2 s) when
/// the stream is lost, and resumes after the last delivered revision. `cancel()` stops it.
public final class EtcdWatch: Sendable {
    private let wake: Int32
    private let thread: Mutex<WorkerThread?>
    private let threadID = Atomic<UInt>(0)
    private let stopped = Atomic<Bool>(false)
    private let resume = Atomic<Int64>(0)

    static let backoffBaseNanos: UInt64 = 100_000_000
    static let backoffMaxNanos: UInt64 = 2_000_000_000

    init(client: EtcdClient, prefix: String, startRevision: Int64,
         onEvent: @escaping @Sendable (EtcdWatchEvent) -> Void) throws(EtcdError) {
        do {
            wake = try Posix.eventfd()
        } catch {
            throw .unavailable("eventfd: \(error)")
        }
        thread = Mutex(nil)
        resume.store(max(startRevision, 0), ordering: .relaxed)
        let body: @Sendable () -> Void = { [self] in
            threadID.store(pthread_self(), ordering: .releasing)
            run(client: client, prefix: prefix, startRevision: startRevision, onEvent: onEvent)
        }
        do {
            let t = try WorkerThread(name: "etcd-watch", body: body)
            thread.withLock { $0 = t }
        } catch {
            Posix.close(wake)
            throw .unavailable("watch thread: \(error)")
        }
    }

    deinit { Posix.close(wake) }

    /// The revision the watch would resume from (one past the last delivered; 0 before the first
    /// stream when watching from now).
    public var nextRevision: Int64 { resume.load(ordering: .relaxed) }

    /// Stops the watch and waits for its thread to end (no callback runs after this returns).
    /// Called from the callback itself, it stops the watch without waiting.
    public func cancel() {
        stopped.store(true, ordering: .releasing)
        Posix.signalEventfd(wake)
        if threadID.load(ordering: .acquiring) == pthread_self() { return }
        let t = thread.withLock { t in
            let taken = t
            t = nil
            return taken
        }
        t?.join()
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }

    private func run(client: EtcdClient, prefix: String, startRevision: Int64,
                     onEvent: @Sendable (EtcdWatchEvent) -> Void) {
        var state = EtcdWatchState(startRevision: startRevision)
        var failures = 0
        while !isStopped {
            let next = stream(client: client, prefix: prefix, state: &state, onEvent: onEvent)
            resume.store(state.next, ordering: .relaxed)
            switch next {
            case .end, .read:
                return
            case .reconnect(let reason):
                if isStopped { return }
                if let e = state.lost(reason) { onEvent(e) }
                if state.connected { failures = 0 }
                let f = min(failures, 16)
                failures += 1
                let pause = min(Self.backoffBaseNanos << UInt64(truncatingIfNeeded: f), Self.backoffMaxNanos)
                // Back-off that a cancel cuts short.
                Posix.waitReadable(wake, timeoutNanos: pause)
            }
        }
    }

    /// One stream: connect, create the watch from `state.next`, read until it breaks. Returns
    /// `.end` (compacted, or cancelled) or `.reconnect(reason)`.
    private func stream(client: EtcdClient, prefix: String, state: inout EtcdWatchState,
                        onEvent: @Sendable (EtcdWatchEvent) -> Void) -> EtcdWatchState.Next {
        let transport = client.transport
        let setup = Posix.monotonicNanos() &+ client.requestTimeoutNanos
        let c: EtcdConnection
        do {
            c = try transport.connect(deadline: setup, wake: wake)
        } catch {
            if isStopped { return .end }
            if case .unavailable(let r) = error { return .reconnect(r) }
            return .reconnect("\(error)")
        }
        let endpoint = transport.endpoints[c.endpoint]
        var decoder = HTTPResponseDecoder()
        var lines = EtcdWatchStream()
        var status = 0
        var errorBody: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var out: [EtcdWatchEvent] = []
        do throws(EtcdConnection.Failure) {
            let request = EtcdConnection.request(path: EtcdWire.watchPath, authority: endpoint.authority,
                                                 body: EtcdWire.watch(prefix: prefix, startRevision: state.next))
            try c.send(request, until: setup, wake: wake)
            while true {
                let n = try c.receive(into: &buffer, until: Posix.monotonicNanos() &+ client.watchIdleNanos, wake: wake)
                let events: [HTTPResponseDecoder.Event]
                do throws(HTTPResponseDecoder.DecodeError) {
                    events = n == 0 ? try decoder.finish() : try decoder.feed(buffer[..<n])
                } catch {
                    switch error {
                    case .truncated: return .reconnect("\(endpoint): watch stream closed")
                    case .malformed(let r), .tooLarge(let r): return .reconnect("\(endpoint): \(r)")
                    }
                }
                for e in events {
                    switch e {
                    case .head(let h):
                        status = h.status
                    case .body(let bytes) where status != 200:
                        if errorBody.count < 64 * 1024 { errorBody += bytes }
                    case .body(let bytes):
                        let messages: [EtcdWatchMessage]
                        do throws(EtcdError) {
                            messages = try lines.feed(bytes)
                        } catch {
                            return .reconnect("\(endpoint): \(error)")
                        }
                        for m in messages {
                            out.removeAll(keepingCapacity: true)
                            let next = state.apply(m, into: &out)
                            resume.store(state.next, ordering: .relaxed)
                            for event in out {
                                if isStopped { return .end }
                                onEvent(event)
                            }
                            if next != .read { return next }
                        }
                    case .end:
                        if status != 200 {
                            var reason = "\(endpoint): watch answered HTTP \(status)"
                            do throws(EtcdError) {
                                _ = try EtcdWire.answer(status: status, body: errorBody)
                            } catch {
                                reason += " (\(error))"
                            }
                            return .reconnect(reason)
                        }
                        return .reconnect("\(endpoint): watch stream ended")
                    }
                }
                if n == 0 { return .reconnect("\(endpoint): watch stream closed") }
            }
        } catch {
            switch error {
            case .woken: return .end
            case .timeout(let sent):
                return .reconnect(sent ? "\(endpoint): watch stream idle too long" : "\(endpoint): watch request not sent in time")
            case .lost(let r, _), .malformed(let r): return .reconnect("\(endpoint): \(r)")
            }
        }
    }
}
