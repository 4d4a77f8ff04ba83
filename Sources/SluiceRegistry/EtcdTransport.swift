internal import SluiceCore
internal import SluiceHTTP
import Synchronization

/// The endpoints, which one to use, and idle keep-alive connections for unary calls.
///
/// Failover: calls go to a preferred endpoint while it works; a failed connect or a lost
/// connection puts that endpoint in back-off (100 ms doubling to 5 s) and moves the preference
/// to the next one, round robin. Endpoints in back-off are tried last, not skipped, so a single
/// endpoint that comes back is used at once. Every connect is bounded by `dialTimeout` and the
/// whole call by its deadline.
final class EtcdTransport: Sendable {
    let endpoints: [EtcdEndpoint]
    let dialTimeoutNanos: UInt64
    /// For `https://` endpoints.
    let tls: TLSClientContext?

    static let backoffBaseNanos: UInt64 = 100_000_000
    static let backoffMaxNanos: UInt64 = 5_000_000_000
    static let maxIdle = 4
    /// Largest answer body of a unary call.
    static let maxBody = 64 << 20

    private struct State {
        var preferred = 0
        var failures: [Int]
        var retryAt: [UInt64]
        var idle: [EtcdConnection] = []
    }

    private let state: Mutex<State>

    init(endpoints: [EtcdEndpoint], dialTimeoutNanos: UInt64, tls: TLSClientContext?) {
        self.endpoints = endpoints
        self.dialTimeoutNanos = dialTimeoutNanos
        self.tls = tls
        state = Mutex(State(failures: Array(repeating: 0, count: endpoints.count),
                            retryAt: Array(repeating: 0, count: endpoints.count)))
    }

    /// Endpoint indices in the order to try them now: from the preferred one round robin, those
    /// in back-off after the others (soonest ready first).
    func candidates() -> [Int] {
        let now = Posix.monotonicNanos()
        return state.withLock { s in
            let n = endpoints.count
            let order = (0..<n).map { (s.preferred + $0) % n }
            let ready = order.filter { s.retryAt[$0] <= now }
            let waiting = order.filter { s.retryAt[$0] > now }.sorted { s.retryAt[$0] < s.retryAt[$1] }
            return ready + waiting
        }
    }

    func markFailure(_ endpoint: Int) {
        let now = Posix.monotonicNanos()
        state.withLock { s in
            guard s.failures.indices.contains(endpoint) else { return }
            let f = min(s.failures[endpoint], 16)
            s.failures[endpoint] = f + 1
            s.retryAt[endpoint] = now &+ min(Self.backoffBaseNanos << UInt64(truncatingIfNeeded: f), Self.backoffMaxNanos)
            if s.preferred == endpoint { s.preferred = (endpoint + 1) % endpoints.count }
            s.idle.removeAll { $0.endpoint == endpoint }
        }
    }

    func markSuccess(_ endpoint: Int) {
        state.withLock { s in
            guard s.failures.indices.contains(endpoint) else { return }
            s.failures[endpoint] = 0
            s.retryAt[endpoint] = 0
        }
    }

    private func takeIdle() -> EtcdConnection? {
        state.withLock { s in s.idle.popLast() }
    }

    private func putIdle(_ c: EtcdConnection) {
        state.withLock { s in
            if s.idle.count < Self.maxIdle { s.idle.append(c) }
        }
    }

    /// A new connection to the first endpoint that accepts one by `deadline`.
    func connect(deadline: UInt64, wake: Int32? = nil) throws(EtcdError) -> EtcdConnection {
        var reasons: [String] = []
        for e in candidates() {
            let now = Posix.monotonicNanos()
            guard now < deadline else { break }
            let dial = min(deadline, now &+ dialTimeoutNanos)
            do {
                let ep = endpoints[e]
                return try EtcdConnection.open(ep.address, endpoint: e, tls: ep.tls ? tls : nil, serverName: ep.host,
                                               deadline: dial, wake: wake)
            } catch {
                switch error {
                case .woken: throw .unavailable("cancelled")
                case .timeout: reasons.append("\(endpoints[e]): connect timed out")
                case .lost(let r, _), .malformed(let r): reasons.append("\(endpoints[e]): \(r)")
                }
                markFailure(e)
            }
        }
        throw .unavailable(reasons.isEmpty ? "no time left to connect" : reasons.joined(separator: "; "))
    }

    /// POSTs `body` to `path` and returns the answer's status and body, within `timeoutNanos`.
    ///
    /// An idle connection is used first; if it turns out closed before any answer byte (etcd
    /// closed it while idle), the call goes on with a new connection. A connection lost before
    /// an answer moves on to the next endpoint, so a write may reach etcd twice (a put is then
    /// applied twice, a compare-guarded txn fails its compare the second time). A request that
    /// was sent and not answered in time is `.timeout`, not retried.
    func call(_ path: String, _ body: [UInt8], timeoutNanos: UInt64) throws(EtcdError) -> (status: Int, body: [UInt8]) {
        let deadline = Posix.monotonicNanos() &+ timeoutNanos
        if let c = takeIdle() {
            do throws(ExchangeError) {
                return try exchange(c, path, body, deadline: deadline, reused: true)
            } catch {
                // A stale keep-alive connection (.retry) falls through to a new one.
                if case .final(let e) = error { throw e }
            }
        }
        var last = "no endpoint answered"
        var attempts = 0
        while attempts < endpoints.count {
            attempts += 1
            let c = try connect(deadline: deadline)
            do throws(ExchangeError) {
                return try exchange(c, path, body, deadline: deadline, reused: false)
            } catch {
                switch error {
                case .retry(let reason):
                    last = reason
                    markFailure(c.endpoint)
                case .final(let e):
                    throw e
                }
            }
        }
        throw .unavailable(last)
    }

    private enum ExchangeError: Error {
        case retry(String)
        case final(EtcdError)
    }

    private func exchange(_ c: EtcdConnection, _ path: String, _ body: [UInt8], deadline: UInt64, reused: Bool)
        throws(ExchangeError) -> (status: Int, body: [UInt8])
    {
        let name = endpoints[c.endpoint].description
        var decoder = HTTPResponseDecoder()
        var status = 0
        var answer: [UInt8] = []
        var received = 0
        var keepAlive = true
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        do throws(EtcdConnection.Failure) {
            try c.send(EtcdConnection.request(path: path, authority: endpoints[c.endpoint].authority, body: body), until: deadline)
            while !decoder.isComplete {
                let n = try c.receive(into: &buffer, until: deadline)
                if n == 0 && received == 0 { throw EtcdConnection.Failure.lost("\(name) closed the connection", answered: false) }
                var events: [HTTPResponseDecoder.Event]
                do throws(HTTPResponseDecoder.DecodeError) {
                    if n == 0 {
                        events = try decoder.finish()
                    } else {
                        received += n
                        events = try decoder.feed(buffer[..<n])
                    }
                } catch {
                    switch error {
                    case .truncated: throw EtcdConnection.Failure.lost("\(name) closed the connection mid-answer", answered: true)
                    case .malformed(let r), .tooLarge(let r): throw EtcdConnection.Failure.malformed(r)
                    }
                }
                for e in events {
                    switch e {
                    case .head(let h):
                        status = h.status
                        if h.value("connection")?.lowercased() == "close" { keepAlive = false }
                    case .body(let b):
                        answer.append(contentsOf: b)
                        if answer.count > Self.maxBody { throw EtcdConnection.Failure.malformed("answer over \(Self.maxBody) bytes") }
                    case .end:
                        break
                    }
                }
            }
        } catch {
            switch error {
            case .lost(let r, let answered):
                if answered { markFailure(c.endpoint); throw .final(.unavailable(r)) }
                throw .retry(r)
            case .timeout(let sent):
                if !sent && !reused { markFailure(c.endpoint) }
                throw .final(sent ? .timeout : .unavailable("\(name): request could not be sent in time"))
            case .woken:
                throw .final(.unavailable("cancelled"))
            case .malformed(let r):
                throw .final(.malformed("\(name): \(r)"))
            }
        }
        markSuccess(c.endpoint)
        if keepAlive { putIdle(c) }
        // etcd's "no leader" (gRPC Unavailable): another member may have one.
        if status == 503 { markFailure(c.endpoint) }
        return (status, answer)
    }
}
