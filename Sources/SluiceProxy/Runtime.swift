import SluiceConfig
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The data plane of one process: binds every listener (one `SO_REUSEPORT` socket per
/// worker), starts the worker threads and stops them. Driven by the control thread.
public final class Runtime: Sendable {
    /// A listener could not be bound.
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
    private let accessLogWriter: AccessLogWriter?
    private let logThread = Mutex<WorkerThread?>(nil)

    /// Binds all listeners of `plan` for `workerCount` workers. Nothing runs yet.
    public init(plan: Plan, workerCount: Int, useSplice: Bool) throws(BindError) {
        planStore = PlanStore(plan)
        process = ProcessState(maxConnections: plan.config.node.maxConnections,
                               shutdownGrace: plan.config.node.shutdownGrace)
        self.workerCount = workerCount
        var perWorker = Array(repeating: [Int32](), count: workerCount)
        var opened: [Int32] = []
        do {
            for l in plan.listeners {
                // A probe bind without SO_REUSEPORT fails when anyone else holds the address,
                // even another process that set SO_REUSEPORT itself.
                let probe = try Runtime.bind(l, reusePort: false)
                Posix.close(probe)
                for w in 0..<workerCount {
                    let fd = try Runtime.bind(l, reusePort: true)
                    opened.append(fd)
                    perWorker[w].append(fd)
                }
            }
        } catch {
            for fd in opened { Posix.close(fd) }
            throw error
        }
        // Access logs: stdout, or a file opened for appending now (so a bad path fails at start).
        var logFds: [Int32] = []
        for l in plan.listeners {
            switch l.accessLog {
            case .off: logFds.append(-1)
            case .stdout: logFds.append(1)
            case .file(let path):
                let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if fd < 0 {
                    for fd in opened { Posix.close(fd) }
                    throw BindError(listener: l.name, address: path, errno: Errno.current, what: "access log")
                }
                logFds.append(fd)
            }
        }
        accessLogWriter = logFds.contains { $0 >= 0 } ? AccessLogWriter(workers: workerCount) : nil
        var seeds: [WorkerSeed] = []
        for w in 0..<workerCount {
            let wake: Int32
            do {
                wake = try Posix.eventfd()
            } catch {
                fatalError("eventfd: \(error)")  // only at start, with descriptors to spare
            }
            seeds.append(WorkerSeed(id: w, listenerFds: perWorker[w], wakeFd: wake, planStore: planStore,
                                    process: process, useSplice: useSplice, accessLogFds: logFds,
                                    accessLog: accessLogWriter?.rings[w]))
        }
        self.seeds = seeds
    }

    private static func bind(_ l: Plan.ListenerPlan, reusePort: Bool) throws(BindError) -> Int32 {
        do {
            return try Socket.listen(on: l.address, reusePort: reusePort)
        } catch {
            throw BindError(listener: l.name, address: l.address.description, errno: error)
        }
    }

    /// Starts one thread per worker; returns their handles.
    public func start() throws(Errno) -> [WorkerThread] {
        var threads: [WorkerThread] = []
        if let w = accessLogWriter {
            let t = try w.start()
            logThread.withLock { $0 = t }
        }
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

    /// Asks every worker to stop accepting and finish its connections within the grace period.
    public func requestStop() {
        process.stopping.store(true, ordering: .relaxed)
        for s in seeds { Posix.signalEventfd(s.wakeFd) }
    }

    /// After the workers have returned: flushes and ends the access-log thread.
    public func stopLogging() {
        accessLogWriter?.stop()
        logThread.withLock { $0 }?.join()
    }

    /// Number of usable CPUs: the worker count for `workers: auto`.
    public static var defaultWorkerCount: Int { Posix.cpuCount() }
}
