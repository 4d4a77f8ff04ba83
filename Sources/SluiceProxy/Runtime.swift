import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The data plane of one process: binds every listener (one `SO_REUSEPORT` socket per
/// worker and kind: TCP, UDP, both for tcp_udp), starts the worker threads, publishes new Plans (reload, target changes) with
/// their listening sockets, and stops the workers. Driven by the control thread.
public final class Runtime: Sendable {
    /// A listener could not be bound (or its access log opened).
    public struct BindError: Error, CustomStringConvertible {
        public var listener: String
        public var address: String
        public var errno: Errno
        var what = "listen"
        public var description: String {
            if what != "listen" { return "listener \(listener): cannot open its \(what) \(address): \(errno)" }
            return errno == .addressInUse
                ? "listener \(listener): address \(address) is already in use"
                : "listener \(listener): cannot listen on \(address): \(errno)"
        }
    }

    public let planStore: PlanStore
    public let process: ProcessState
    public let workerCount: Int
    private let seeds: [WorkerSeed]
    private let accessLogWriter: AccessLogWriter
    private let logThread = Mutex<WorkerThread?>(nil)
    /// Sockets per listener identity (name, protocol, bind), one per worker, and open
    /// access-log files by path. Touched by the control thread only, under the lock.
    private let bound: Mutex<[String: [Int32]]>
    private let logFiles = Mutex<[String: Int32]>([:])
    /// Each worker's counters, summed by the metrics scrape.
    public let stats: [StatsBlock]

    /// Binds all listeners of `plan` for `workerCount` workers. Nothing runs yet.
    public init(plan: Plan, workerCount: Int, useSplice: Bool) throws(BindError) {
        self.workerCount = workerCount
        process = ProcessState(maxConnections: plan.config.node.maxConnections,
                               shutdownGrace: plan.config.node.shutdownGrace)
        bound = Mutex([:])
        accessLogWriter = AccessLogWriter(workers: workerCount)
        stats = (0..<workerCount).map { _ in StatsBlock() }
        let fds = try Runtime.prepare(plan, workers: workerCount, bound: bound)
        let logFds = try Runtime.openLogs(plan, files: logFiles)
        planStore = PlanStore(plan, listenerFds: fds.tcp, udpFds: fds.udp, accessLogFds: logFds)
        var seeds: [WorkerSeed] = []
        for w in 0..<workerCount {
            let wake: Int32
            do {
                wake = try Posix.eventfd()
            } catch {
                fatalError("eventfd: \(error)")  // only at start, with descriptors to spare
            }
            seeds.append(WorkerSeed(id: w, wakeFd: wake, planStore: planStore, process: process, useSplice: useSplice,
                                    accessLog: accessLogWriter.rings[w], stats: stats[w]))
        }
        self.seeds = seeds
        SurgeQueues.shared.register(wakeFds: seeds.map(\.wakeFd))
    }

    /// Requests (L7) or connections (L4) waiting in group `group`'s surge queue now (0 when
    /// it has no queue); what target tracking and scale-from-zero read (SPEC §11, §12).
    public func surgeQueueLength(group: String) -> Int { SurgeQueues.shared.length(group: group) }

    /// What a listener binds: its TCP listening socket (every listener but udp ones) and its
    /// UDP socket (udp, tcp_udp). tcp_udp binds both on one port.
    enum SocketKind: String { case tcp, udp }

    /// The identity of one kind of socket of a listener: a listener whose identity stays keeps
    /// its sockets across Plans. Per kind, so a tcp listener that becomes tcp_udp keeps its
    /// TCP sockets and gains UDP ones.
    static func identity(_ l: Plan.ListenerPlan, _ kind: SocketKind) -> String {
        "\(l.name)|\(kind == .udp ? "udp" : l.isHTTP ? "http" : "tcp")|\(l.address)"
    }

    /// The kinds of socket `l` binds.
    static func kinds(_ l: Plan.ListenerPlan) -> [SocketKind] {
        (l.hasTCP ? [.tcp] : []) + (l.hasUDP ? [.udp] : [])
    }

    /// The sockets for `plan`'s listeners, `[worker][listener]` for each kind (-1 where a
    /// listener has none of that kind): kept where the listener did not change, bound anew
    /// otherwise. On failure nothing new stays open.
    private static func prepare(_ plan: Plan, workers: Int, bound: borrowing Mutex<[String: [Int32]]>)
        throws(BindError) -> (tcp: [[Int32]], udp: [[Int32]]) {
        var existing = bound.withLock { $0 }
        var opened: [Int32] = []
        let none = Array(repeating: Array(repeating: Int32(-1), count: plan.listeners.count), count: workers)
        var perWorker = (tcp: none, udp: none)
        var next: [String: [Int32]] = [:]
        do throws(BindError) {
            for (i, l) in plan.listeners.enumerated() {
                for kind in kinds(l) {
                    let key = identity(l, kind)
                    var sockets: [Int32]
                    if let have = existing.removeValue(forKey: key) {
                        sockets = have
                    } else {
                        // A probe bind without SO_REUSEPORT fails when anyone else holds the address,
                        // even another process that set SO_REUSEPORT itself.
                        let probe = try bind(l, kind, reusePort: false)
                        Posix.close(probe)
                        sockets = []
                        for _ in 0..<workers {
                            let fd = try bind(l, kind, reusePort: true)
                            opened.append(fd)
                            sockets.append(fd)
                        }
                    }
                    next[key] = sockets
                    for w in 0..<workers {
                        if kind == .udp { perWorker.udp[w][i] = sockets[w] } else { perWorker.tcp[w][i] = sockets[w] }
                    }
                }
            }
        } catch {
            for fd in opened { Posix.close(fd) }
            throw error
        }
        // Listeners that left the plan: the workers close their own sockets when they adopt it.
        bound.withLock { $0 = next }
        return perWorker
    }

    private static func bind(_ l: Plan.ListenerPlan, _ kind: SocketKind, reusePort: Bool) throws(BindError) -> Int32 {
        do {
            switch kind {
            case .tcp: return try Socket.listen(on: l.address, reusePort: reusePort)
            case .udp: return try Socket.bindDatagram(on: l.address, reusePort: reusePort)
            }
        } catch {
            // tcp_udp names the half that failed; the others have one kind only.
            let address = l.hasTCP && l.hasUDP ? "\(l.address) (\(kind.rawValue))" : l.address.description
            throw BindError(listener: l.name, address: address, errno: error)
        }
    }

    /// Access-log descriptors per listener: stdout, or a file opened for appending (so a bad
    /// path fails before the Plan is used).
    private static func openLogs(_ plan: Plan, files: borrowing Mutex<[String: Int32]>) throws(BindError) -> [Int32] {
        var out: [Int32] = []
        for l in plan.listeners {
            switch l.accessLog {
            case .off: out.append(-1)
            case .stdout: out.append(1)
            case .file(let path):
                if let fd = files.withLock({ $0[path] }) {
                    out.append(fd)
                    continue
                }
                let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if fd < 0 { throw BindError(listener: l.name, address: path, errno: Errno.current, what: "access log") }
                files.withLock { $0[path] = fd }
                out.append(fd)
            }
        }
        return out
    }

    /// Starts one thread per worker (and the access-log thread); returns the workers.
    public func start() throws(Errno) -> [WorkerThread] {
        let t = try accessLogWriter.start()
        logThread.withLock { $0 = t }
        var threads: [WorkerThread] = []
        for seed in seeds {
            threads.append(try WorkerThread(name: "sluice-w\(seed.id)") {
                do {
                    let worker = try Worker(seed: seed)
                    worker.run()
                } catch {
                    fatalError("worker \(seed.id) could not start: \(error)")
                }
            })
        }
        return threads
    }

    /// Publishes `plan`: binds its new listeners first (a failure leaves the running Plan
    /// untouched), then wakes the workers.
    @discardableResult
    public func publish(_ plan: Plan) throws(BindError) -> UInt64 {
        let logFds = try Runtime.openLogs(plan, files: logFiles)
        let fds = try Runtime.prepare(plan, workers: workerCount, bound: bound)
        let version = planStore.publish(plan, listenerFds: fds.tcp, udpFds: fds.udp, accessLogFds: logFds)
        wakeWorkers()
        return version
    }

    /// Tells workers that weight cells of the current Plan changed. Returns the routing
    /// version that carries the change.
    func weightsPublished() -> UInt64 {
        let version = planStore.weightsPublished()
        wakeWorkers()
        return version
    }

    /// Asks workers to close connections to targets marked evicted.
    public func evict() {
        process.evictions.add(1, ordering: .releasing)
        wakeWorkers()
    }

    private func wakeWorkers() {
        for s in seeds { Posix.signalEventfd(s.wakeFd) }
    }

    /// Asks every worker to stop accepting and finish its connections within the grace period.
    public func requestStop() {
        process.stopping.store(true, ordering: .relaxed)
        wakeWorkers()
    }

    /// After the workers have returned: flushes and ends the access-log thread.
    public func stopLogging() {
        accessLogWriter.stop()
        logThread.withLock { $0 }?.join()
    }

    /// Number of usable CPUs: the worker count for `workers: auto`.
    public static var defaultWorkerCount: Int { Posix.cpuCount() }
}
