import SluiceBalancer
import SluiceConfig
import SluiceProxy
import SluiceCore
import Synchronization

/// Active health checks on their own thread and epoll, never on a worker: a TCP connect,
/// or an HTTP `GET` whose status must fit the matcher. Each target is checked at a fixed
/// rate (the next check is due `interval` after the previous one was due, whatever the
/// answer took), with a random offset so checks of many targets spread out.
public final class HealthChecker: Sendable {
    private let control: ControlPlane
    private let stopping = Atomic<Bool>(false)
    private let wake: Int32

    public init(control: ControlPlane) throws(Errno) {
        self.control = control
        wake = try Posix.eventfd()
    }

    public func start() throws(Errno) -> WorkerThread {
        try WorkerThread(name: "sluice-health") { [self] in
            do {
                var loop = try CheckLoop(control: control, wake: wake)
                loop.run(stopping: stopping)
            } catch {
                fatalError("health checker could not start: \(error)")
            }
        }
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        Posix.signalEventfd(wake)
    }
}

/// The checker's loop state (lives on the checker thread only).
///
/// Checks live in a slab indexed by a stable slot; a check keeps its slot for as long as its
/// target is listed. Sockets are registered in an `FdTable` (owner `.healthCheck`, index = slot)
/// and epoll carries the table's generation-tagged token, so an event queued for a descriptor
/// that was closed (and perhaps reused by the next check) in the same batch is dropped.
struct CheckLoop {
    /// Names a checked target; used only when the target list is refreshed (cold path).
    struct TargetKey: Hashable {
        var group: String
        var address: String
    }

    struct Check {
        var key: TargetKey
        var socketAddress: SocketAddress
        var config: HealthCheckConfig
        /// The `GET` sent by HTTP checks, built when the config is (re)read.
        var request: [UInt8]
        var nextDue: UInt64
        var fd: Int32 = -1
        /// `fd`'s epoll token (generation-tagged by `fds`).
        var token: UInt64 = 0
        var deadline: UInt64 = 0
        var phase = Phase.idle
        var response = HealthCheckResponse()
        /// `https` checks: the client context (built when the config is read) and the
        /// connection's TLS stream while a check runs.
        var tlsContext: TLSClientContext?
        var serverName: String?
        var transport = Transport.plain
        /// gRPC checks (`protocol_version: grpc` groups): the call while a check runs.
        var grpc: GRPCHealthCheck?
        /// Targets that expect a PROXY header get a LOCAL one first (before TLS and requests).
        var proxyProtocol: ProxyProtocolVersion?
    }

    enum Phase { case idle, connecting, handshaking, reading }

    /// Bytes asked for per read of a check's answer.
    static let readSize = 4096
    /// How often the target list is compared with the control plane's.
    static let refreshInterval: UInt64 = 500_000_000

    let control: ControlPlane
    let wake: Int32
    let epoll: Epoll
    var fds = FdTable(initialCapacity: 256)
    var checks: [Check?] = []
    var freeSlots: [Int] = []
    var slotByTarget: [TargetKey: Int] = [:]
    /// One read buffer for every check (one thread).
    var scratch = [UInt8](repeating: 0, count: CheckLoop.readSize)
    var rng = SystemRandomNumberGenerator()
    var lastRefresh: UInt64 = 0

    init(control: ControlPlane, wake: Int32) throws(Errno) {
        self.control = control
        self.wake = wake
        epoll = try Epoll(capacity: 256)
        let token = fds.register(wake, owner: .wakeup, index: -1)
        try epoll.add(wake, events: [.readable], data: token)
    }

    mutating func run(stopping: borrowing Atomic<Bool>) {
        while !stopping.load(ordering: .acquiring) {
            var now = Posix.monotonicNanos()
            if now &- lastRefresh >= Self.refreshInterval { refresh(now) }
            var next = now &+ Self.refreshInterval
            for case let c? in checks { next = min(next, c.phase == .idle ? c.nextDue : c.deadline) }
            let waitMillis = next > now ? Int32(min(100, (next - now) / 1_000_000 + 1)) : 0
            let n = epoll.wait(timeoutMillis: waitMillis)
            now = Posix.monotonicNanos()
            for i in 0..<n {
                let e = epoll.event(at: i)
                guard let (fd, entry) = fds.lookup(e.data) else { continue }  // stale: closed since
                switch entry.owner {
                case .wakeup:
                    Posix.drainEventfd(fd)
                case .healthCheck:
                    let slot = Int(entry.index)
                    if checks[slot]?.fd == fd { progress(slot, events: e.events, now: now) }
                default:
                    break
                }
            }
            for slot in checks.indices {
                guard let c = checks[slot] else { continue }
                if c.phase != .idle && now >= c.deadline {
                    finish(slot, success: false, reason: .timeout)
                } else if c.phase == .idle && now >= c.nextDue {
                    begin(slot, now: now)
                }
            }
            control.tick()
        }
        for slot in checks.indices { closeSocket(slot) }
    }

    /// Follows the control plane's target list: new targets get a check (and a slot), gone ones
    /// lose it.
    mutating func refresh(_ now: UInt64) {
        lastRefresh = now
        var wanted = Set<TargetKey>()
        for t in control.checkTargets() {
            let key = TargetKey(group: t.group, address: t.address)
            wanted.insert(key)
            if let slot = slotByTarget[key] {
                checks[slot]?.proxyProtocol = t.proxyProtocol
                if checks[slot]?.config != t.check || checks[slot]?.serverName != t.tls?.serverName {
                    checks[slot]?.config = t.check
                    checks[slot]?.request = Self.request(path: t.check.path, host: t.address)
                    checks[slot]?.tlsContext = Self.tlsContext(t)
                    checks[slot]?.serverName = t.tls?.serverName
                }
                continue
            }
            guard let sa = SocketAddress(host: t.host, port: t.port) else { continue }
            let offset = UInt64.random(in: 0..<max(1, t.check.interval / 2), using: &rng)
            var check = Check(key: key, socketAddress: sa, config: t.check,
                              request: Self.request(path: t.check.path, host: t.address), nextDue: now &+ offset)
            check.tlsContext = Self.tlsContext(t)
            check.serverName = t.tls?.serverName
            check.proxyProtocol = t.proxyProtocol
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
                checks[slot] = check
            } else {
                slot = checks.count
                checks.append(check)
            }
            slotByTarget[key] = slot
        }
        for (key, slot) in slotByTarget where !wanted.contains(key) {
            closeSocket(slot)
            checks[slot] = nil
            slotByTarget[key] = nil
            freeSlots.append(slot)
        }
    }

    /// The TLS context of an `https` check: the group's verification settings, or none.
    static func tlsContext(_ t: ControlPlane.CheckTarget) -> TLSClientContext? {
        guard t.check.protocolKind == .https else { return nil }
        let verify = t.tls?.verify ?? false
        return try? TLSClientContext(verify: verify, caFile: t.tls?.caFile, alpn: [t.check.grpc ? "h2" : "http/1.1"])
    }

    static func request(path: String, host: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n".utf8)
    }

    mutating func begin(_ slot: Int, now: UInt64) {
        guard var c = checks[slot] else { return }
        // Fixed rate: the next one is due an interval after this one was, plus a little jitter.
        let jitter = UInt64.random(in: 0...(c.config.interval / 20), using: &rng)
        c.nextDue = max(c.nextDue &+ c.config.interval, now) &+ jitter
        c.deadline = now &+ c.config.timeout
        c.response.reset()
        guard let fd = try? Socket.tcp(for: c.socketAddress) else {
            checks[slot] = c  // no descriptor to spare: try again next interval
            return
        }
        let token = fds.register(fd, owner: .healthCheck, index: Int32(slot))
        do {
            try epoll.add(fd, events: [.writable, .readable], data: token)
        } catch {
            fds.unregister(fd)
            Posix.close(fd)
            checks[slot] = c
            return
        }
        c.fd = fd
        c.token = token
        c.phase = .connecting
        checks[slot] = c
        do {
            if try Socket.connect(fd, to: c.socketAddress) == .connected { connected(slot) }
        } catch {
            finish(slot, success: false, reason: .connectionRefused)
        }
    }

    mutating func progress(_ slot: Int, events: EpollEvents, now: UInt64) {
        guard let c = checks[slot] else { return }
        switch c.phase {
        case .idle:
            return
        case .connecting:
            if !events.isDisjoint(with: [.error, .hangup]) || Socket.pendingError(c.fd) != 0 {
                finish(slot, success: false, reason: .connectionRefused)
            } else if events.contains(.writable) {
                connected(slot)
            }
        case .handshaking:
            if !events.isDisjoint(with: [.error, .hangup]) {
                finish(slot, success: false, reason: .connectionRefused)
            } else {
                handshake(slot)
            }
        case .reading:
            readResponse(slot)
        }
    }

    mutating func connected(_ slot: Int) {
        guard let c = checks[slot] else { return }
        if let version = c.proxyProtocol, !sendLocalHeader(c.fd, version) {
            finish(slot, success: false, reason: .connectionRefused)
            return
        }
        if c.config.protocolKind == .tcp {
            finish(slot, success: true, reason: nil)
            return
        }
        if let context = c.tlsContext {
            guard let stream = context.makeStream(fd: c.fd, serverName: c.serverName) else {
                finish(slot, success: false, reason: .connectionRefused)
                return
            }
            checks[slot]?.transport = .tls(stream)
            checks[slot]?.phase = .handshaking
            handshake(slot)
            return
        }
        sendRequest(slot)
    }

    /// Writes a PROXY LOCAL header (v2) or `PROXY UNKNOWN` (v1) on the bare socket, before
    /// anything else: the target keeps the check's own addresses. One whole write (16 bytes
    /// on a fresh socket) or the connection is unusable.
    mutating func sendLocalHeader(_ fd: Int32, _ version: ProxyProtocolVersion) -> Bool {
        let n = scratch.withUnsafeMutableBytes { ProxyHeaderEncoder.encodeLocal(version, into: $0) }
        let written = scratch.withUnsafeBytes { raw -> Int in
            guard let base = raw.baseAddress, n > 0, case .processed(let w)? = try? Posix.write(fd, from: base, count: n)
            else { return -1 }
            return w
        }
        return written == n
    }

    /// An `https` check's TLS handshake (bounded by the check's timeout like the rest).
    mutating func handshake(_ slot: Int) {
        guard let c = checks[slot], case .tls(let stream) = c.transport else { return }
        switch stream.handshake() {
        case .done: sendRequest(slot)
        case .wantsRead, .wantsWrite: return  // registered for both directions
        case .failed: finish(slot, success: false, reason: .connectionRefused)
        }
    }

    mutating func sendRequest(_ slot: Int) {
        guard let c = checks[slot] else { return }
        if c.config.grpc {
            let call = GRPCHealthCheck(authority: c.key.address, service: c.config.path, matcher: c.config.matcher,
                                       tls: c.tlsContext != nil)
            checks[slot]?.grpc = call
            let n = scratch.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return call.output(into: base, capacity: raw.count)
            }
            // A few hundred bytes (preface, SETTINGS, one call): one whole write or nothing.
            let written = scratch.withUnsafeBytes { raw -> TransportResult? in
                guard let base = raw.baseAddress, n > 0 else { return nil }
                return c.transport.write(c.fd, from: base, count: n)
            }
            switch written {
            case .bytes(let w)? where w == n, .drained(let w)? where w == n: break
            default:
                finish(slot, success: false, reason: .connectionRefused)
                return
            }
            checks[slot]?.phase = .reading
            try? epoll.modify(c.fd, events: [.readable], data: c.token)
            if case .tls = c.transport { readResponse(slot) }
            return
        }
        // The request is far smaller than a fresh socket's send buffer (or one TLS record):
        // anything but one whole write means the connection is unusable.
        let written = c.request.withUnsafeBytes { raw -> TransportResult? in
            guard let base = raw.baseAddress else { return nil }
            return c.transport.write(c.fd, from: base, count: raw.count)
        }
        switch written {
        case .bytes(let n)? where n == c.request.count: break
        case .drained(let n)? where n == c.request.count: break
        default:
            finish(slot, success: false, reason: .connectionRefused)
            return
        }
        checks[slot]?.phase = .reading
        try? epoll.modify(c.fd, events: [.readable], data: c.token)
        if case .tls = c.transport { readResponse(slot) }  // OpenSSL may hold bytes already
    }

    /// Reads what the target sent (until the socket would block) and judges the head once whole.
    mutating func readResponse(_ slot: Int) {
        guard let fd = checks[slot]?.fd, let transport = checks[slot]?.transport else { return }
        while true {
            let result = scratch.withUnsafeMutableBytes { raw -> TransportResult? in
                guard let base = raw.baseAddress else { return nil }
                return transport.read(fd, into: base, count: raw.count, hangupSeen: true)
            }
            let verdict: HealthCheckResponse.Verdict
            switch result {
            case .wouldBlock?, .wantsRead?, .wantsWrite?:
                return
            case .bytes(let n)? where n > 0, .drained(let n)? where n > 0:
                if let call = checks[slot]?.grpc {
                    let v = scratch.withUnsafeBytes { raw in call.receive(UnsafeRawBufferPointer(rebasing: raw[..<n])) }
                    // SETTINGS and PING acknowledgements the session owes go out at once.
                    if call.wantsWrite, let c = checks[slot] {
                        let m = scratch.withUnsafeMutableBytes { raw -> Int in
                            guard let base = raw.baseAddress else { return 0 }
                            return call.output(into: base, capacity: raw.count)
                        }
                        _ = scratch.withUnsafeBytes { raw -> TransportResult? in
                            guard let base = raw.baseAddress, m > 0 else { return nil }
                            return c.transport.write(c.fd, from: base, count: m)
                        }
                    }
                    switch v {
                    case .needMore: continue
                    case .pass: finish(slot, success: true, reason: nil)
                    case .fail: finish(slot, success: false, reason: .responseCodeMismatch)
                    }
                    return
                }
                verdict = scratch.withUnsafeBytes { raw in
                    checks[slot]!.response.append(UnsafeRawBufferPointer(rebasing: raw[..<n]))
                }
            case .drained?:
                return
            case .bytes?, .closed?, .failed?, nil:
                verdict = .garbled  // closed (or failed) before a whole head arrived
            }
            switch verdict {
            case .needMore:
                continue
            case .garbled:
                finish(slot, success: false, reason: .responseCodeMismatch)
            case .status(let status):
                let fits = checks[slot]!.config.matcher.contains { $0.contains(status) }
                finish(slot, success: fits, reason: fits ? nil : .responseCodeMismatch)
            }
            return
        }
    }

    mutating func finish(_ slot: Int, success: Bool, reason: TargetReason?) {
        guard let key = checks[slot]?.key else { return }
        closeSocket(slot)
        control.recordHealth(group: key.group, address: key.address, success: success, reason: reason)
    }

    mutating func closeSocket(_ slot: Int) {
        guard var c = checks[slot] else { return }
        if case .tls(let stream) = c.transport { stream.shutdown() }
        c.transport = .plain
        c.grpc = nil
        if c.fd >= 0 {
            fds.unregister(c.fd)
            epoll.remove(c.fd)
            Posix.close(c.fd)
            c.fd = -1
        }
        c.phase = .idle
        checks[slot] = c
    }
}
