import SluiceBalancer
import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
struct CheckLoop {
    struct Check {
        var group: String
        var address: String
        var socketAddress: SocketAddress
        var config: HealthCheckConfig
        var nextDue: UInt64
        var fd: Int32 = -1
        var deadline: UInt64 = 0
        var phase = Phase.idle
        var response: [UInt8] = []
    }

    enum Phase { case idle, connecting, reading }

    let control: ControlPlane
    let wake: Int32
    let epoll: Epoll
    var checks: [String: Check] = [:]
    var byFd: [Int32: String] = [:]
    var rng = SystemRandomNumberGenerator()
    var lastRefresh: UInt64 = 0

    init(control: ControlPlane, wake: Int32) throws(Errno) {
        self.control = control
        self.wake = wake
        epoll = try Epoll(capacity: 256)
        try epoll.add(wake, events: [.readable], data: UInt64(UInt32(bitPattern: wake)))
    }

    mutating func run(stopping: borrowing Atomic<Bool>) {
        while !stopping.load(ordering: .acquiring) {
            var now = Posix.monotonicNanos()
            if now &- lastRefresh >= 500_000_000 { refresh(now) }
            let next = checks.values.map { $0.phase == .idle ? $0.nextDue : $0.deadline }.min() ?? now &+ 500_000_000
            let waitMillis = next > now ? Int32(min(100, (next - now) / 1_000_000 + 1)) : 0
            let n = epoll.wait(timeoutMillis: waitMillis)
            now = Posix.monotonicNanos()
            for i in 0..<n {
                let e = epoll.event(at: i)
                let fd = Int32(truncatingIfNeeded: e.data)
                if fd == wake {
                    Posix.drainEventfd(wake)
                    continue
                }
                if let key = byFd[fd] { progress(key, events: e.events, now: now) }
            }
            for key in Array(checks.keys) {
                guard let c = checks[key] else { continue }
                if c.phase != .idle && now >= c.deadline {
                    finish(key, success: false, reason: .timeout, now: now)
                } else if c.phase == .idle && now >= c.nextDue {
                    begin(key, now: now)
                }
            }
            control.tick()
        }
        for key in Array(checks.keys) { closeSocket(key) }
    }

    /// Follows the control plane's target list: new targets get a check, gone ones lose it.
    mutating func refresh(_ now: UInt64) {
        lastRefresh = now
        var wanted = Set<String>()
        for t in control.checkTargets() {
            let key = t.group + "|" + t.address
            wanted.insert(key)
            if var c = checks[key] {
                c.config = t.check
                checks[key] = c
                continue
            }
            guard let sa = SocketAddress(host: t.host, port: t.port) else { continue }
            let offset = UInt64.random(in: 0..<max(1, t.check.interval / 2), using: &rng)
            checks[key] = Check(group: t.group, address: t.address, socketAddress: sa, config: t.check,
                                nextDue: now &+ offset)
        }
        for key in Array(checks.keys) where !wanted.contains(key) {
            closeSocket(key)
            checks[key] = nil
        }
    }

    mutating func begin(_ key: String, now: UInt64) {
        guard var c = checks[key] else { return }
        // Fixed rate: the next one is due an interval after this one was, plus a little jitter.
        let jitter = UInt64.random(in: 0...(c.config.interval / 20), using: &rng)
        c.nextDue = max(c.nextDue &+ c.config.interval, now) &+ jitter
        c.deadline = now &+ c.config.timeout
        c.response.removeAll(keepingCapacity: true)
        guard let fd = try? Socket.tcp(for: c.socketAddress) else {
            checks[key] = c
            return
        }
        c.fd = fd
        c.phase = .connecting
        checks[key] = c
        byFd[fd] = key
        try? epoll.add(fd, events: [.writable, .readable], data: UInt64(UInt32(bitPattern: fd)))
        do {
            if try Socket.connect(fd, to: c.socketAddress) == .connected { connected(key, now: now) }
        } catch {
            finish(key, success: false, reason: .connectionRefused, now: now)
        }
    }

    mutating func progress(_ key: String, events: EpollEvents, now: UInt64) {
        guard let c = checks[key] else { return }
        switch c.phase {
        case .idle:
            return
        case .connecting:
            if !events.isDisjoint(with: [.error, .hangup]) || Socket.pendingError(c.fd) != 0 {
                finish(key, success: false, reason: .connectionRefused, now: now)
            } else if events.contains(.writable) {
                connected(key, now: now)
            }
        case .reading:
            readResponse(key, now: now)
        }
    }

    mutating func connected(_ key: String, now: UInt64) {
        guard var c = checks[key] else { return }
        if c.config.protocolKind == .tcp {
            finish(key, success: true, reason: nil, now: now)
            return
        }
        let request = "GET \(c.config.path) HTTP/1.1\r\nHost: \(c.address)\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n"
        let ok = request.utf8CString.withUnsafeBytes { raw in write(c.fd, raw.baseAddress, raw.count - 1) == raw.count - 1 }
        guard ok else {
            finish(key, success: false, reason: .connectionRefused, now: now)
            return
        }
        c.phase = .reading
        checks[key] = c
        try? epoll.modify(c.fd, events: [.readable], data: UInt64(UInt32(bitPattern: c.fd)))
    }

    mutating func readResponse(_ key: String, now: UInt64) {
        guard var c = checks[key] else { return }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBytes { read(c.fd, $0.baseAddress, $0.count) }
        if n > 0 { c.response += buf[0..<n] }
        checks[key] = c
        // "HTTP/1.1 200" is enough to judge.
        if c.response.count >= 12 || n <= 0 {
            guard c.response.count >= 12,
                  String(decoding: c.response[0..<5], as: UTF8.self) == "HTTP/",
                  let status = Int(String(decoding: c.response[9..<12], as: UTF8.self)) else {
                if n < 0 && errno == EAGAIN { return }
                finish(key, success: false, reason: .responseCodeMismatch, now: now)
                return
            }
            let fits = c.config.matcher.contains { $0.contains(status) }
            finish(key, success: fits, reason: fits ? nil : .responseCodeMismatch, now: now)
        }
    }

    mutating func finish(_ key: String, success: Bool, reason: TargetReason?, now: UInt64) {
        guard let c = checks[key] else { return }
        closeSocket(key)
        control.recordHealth(group: c.group, address: c.address, success: success, reason: reason)
    }

    mutating func closeSocket(_ key: String) {
        guard var c = checks[key] else { return }
        if c.fd >= 0 {
            byFd[c.fd] = nil
            epoll.remove(c.fd)
            Posix.close(c.fd)
            c.fd = -1
        }
        c.phase = .idle
        checks[key] = c
    }
}
