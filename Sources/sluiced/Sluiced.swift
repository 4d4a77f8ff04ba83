import ArgumentParser
import CSluice
import Foundation
import Logging
import SluiceConfig
import SluiceControl
import SluiceCore
import SluiceControlPlane
import SluiceEvents
import SluiceProxy
import Synchronization

/// `sluiced`: the load balancer daemon. The main thread is the control loop (signals,
/// reload, systemd notification); the control API, metrics endpoint, health checker and
/// access log have threads of their own; workers run the data plane.
@main
struct Sluiced: ParsableCommand {
    static let version = "0.3.0"

    static let configuration = CommandConfiguration(
        commandName: "sluiced",
        abstract: "Sluice: a layer 4/7 load balancer daemon.",
        discussion: """
            Runs in the foreground. SIGHUP reloads the configuration (a config with errors is refused and the \
            old one keeps running); SIGTERM or SIGINT stop accepting, let open connections finish (up to \
            node.shutdown_grace) and exit 0. Run-time registrations live in control.state and survive restarts.
            """,
        version: Sluiced.version
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = "/etc/sluice/sluice.yaml"

    @Flag(name: .long, help: "Validate the configuration and exit: 0 when valid, 1 otherwise.")
    var check = false

    @Option(name: .long, help: "Log line format: text or json.")
    var logFormat: String = "text"

    @Flag(name: .long, help: "Copy bytes through buffers instead of splice(2) (diagnostics).")
    var noSplice = false

    @Flag(name: .long, help: "Start even if the state file is corrupt (its registrations are dropped).")
    var resetState = false

    func validate() throws {
        guard LineLogHandler.Format(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format must be text or json")
        }
    }

    func run() throws {
        let format = LineLogHandler.Format(rawValue: logFormat) ?? .text
        LoggingSystem.bootstrap { LineLogHandler(label: $0, format: format) }
        let log = Logger(label: "sluiced")

        // Signals first: a SIGHUP or SIGTERM arriving once a port answers must be handled, never fatal.
        signal(SIGPIPE, SIG_IGN)
        let signalFd = csluice_block_signals_signalfd()
        guard signalFd >= 0 else {
            log.critical("cannot set up signal handling: \(Errno.current)")
            throw ExitCode(1)
        }

        let cfg: Config
        do {
            cfg = try ConfigLoader.load(path: config)
        } catch {
            for e in error.errors { printError(e.description) }
            throw ExitCode(1)
        }
        if check {
            // Certificates and keys are loaded into OpenSSL only when a Plan is compiled.
            do {
                _ = try Plan(config: cfg, generation: 0)
            } catch {
                printError(error.description)
                throw ExitCode(1)
            }
            print("\(config): ok (\(cfg.listeners.count) listeners, \(cfg.targetGroups.count) target groups)")
            return
        }

        // Registrations made at run time, restored before anything listens.
        let statePath = cfg.control.state
        var saved: [Registration] = []
        do {
            saved = try StateFile.load(path: statePath)
        } catch {
            if resetState {
                log.warning("starting with an empty state: \(error)")
            } else {
                printError("\(error); refusing to start rather than drop registered targets (--reset-state starts anyway)")
                throw ExitCode(1)
            }
        }
        // The state file is input too: a registration that could not be applied is refused
        // here, with a message, rather than trapping later.
        let admitted = ControlPlane.admit(saved.map {
            ControlPlane.Registration(group: $0.group, address: $0.address, zone: $0.zone ?? cfg.node.zone,
                                      weight: $0.weight, registeredAt: $0.registeredAt)
        })
        if !admitted.problems.isEmpty {
            if resetState {
                for p in admitted.problems { log.warning("dropping: \(statePath): \(p)") }
            } else {
                for p in admitted.problems { printError("\(statePath): \(p)") }
                printError("refusing to start rather than drop registered targets (--reset-state starts without them)")
                throw ExitCode(1)
            }
        }
        let events = EventBus()
        // Event rules (SPEC §13): every event goes through the rules synchronously, before `publish` returns.
        let eventRules = EventRules(directory: EventRules.directory(forStateFile: statePath),
                                    log: { Logger(label: "sluiced.events").error("\($0)") })
        let ruleProblems = eventRules.apply(cfg.events)
        if !ruleProblems.isEmpty {
            for p in ruleProblems { printError(p) }
            throw ExitCode(1)
        }
        events.addSink { eventRules.offer($0) }
        let control = ControlPlane(
            config: cfg,
            registrations: admitted.valid,
            persist: { regs in
                try StateFile.save(regs.map {
                    Registration(group: $0.group, address: $0.address, zone: $0.zone, weight: $0.weight,
                                 registeredAt: $0.registeredAt)
                }, path: statePath)
            },
            onEvent: { e in
                events.publish(ControlEvent(type: e.type, group: e.group, target: e.target, state: e.state,
                                            reason: e.reason, message: e.message, activity: e.activity,
                                            cause: e.cause, result: e.result, desired: e.desired))
                var meta: Logger.Metadata = ["event": "\(e.type)"]
                if let g = e.group { meta["group"] = "\(g)" }
                if let t = e.target { meta["target"] = "\(t)" }
                if let s = e.state { meta["state"] = "\(s)" }
                if let r = e.reason { meta["reason"] = "\(r)" }
                Logger(label: "sluiced").info("\(e.message ?? e.type)", metadata: meta)
            })

        let plan: Plan
        do {
            plan = try control.makePlan()
        } catch {
            printError("\(config): \(error)")
            throw ExitCode(1)
        }
        let workers = cfg.node.workers ?? Runtime.defaultWorkerCount
        let runtime: Runtime
        do {
            runtime = try Runtime(plan: plan, workerCount: workers, useSplice: !noSplice)
        } catch {
            log.critical("\(error)")
            throw ExitCode(1)
        }
        control.attach(runtime)
        let threads: [WorkerThread]
        let checker: HealthChecker
        let checkerThread: WorkerThread
        do {
            threads = try runtime.start()
            checker = try HealthChecker(control: control)
            checkerThread = try checker.start()
        } catch {
            log.critical("cannot start threads: \(error)")
            throw ExitCode(1)
        }

        // Fleet mode (SPEC §10): registrations through etcd. A node that cannot reach etcd
        // starts anyway with the state file's registrations and keeps trying.
        var fleet: Fleet?
        if let registry = cfg.registry {
            do {
                let f = try Fleet(
                    settings: Fleet.Settings(registry: registry, nodeName: cfg.node.name, zone: cfg.node.zone,
                                             version: Sluiced.version, started: FleetRecords.timestamp()),
                    control: control, planGeneration: { runtime.planStore.generation })
                try f.start()
                fleet = f
            } catch {
                log.critical("registry: \(error)")
                throw ExitCode(1)
            }
        }

        // Managed groups (SPEC §11): in a fleet, only the holder of {prefix}/leader/scaling scales.
        let scalingLeader: FleetLeader?
        let scaler: Scaler
        do {
            scalingLeader = try fleet.map { f in
                try f.scalingLeader(onChange: { leading in
                    Logger(label: "sluiced").info("\(leading ? "leading" : "no longer leading") scaling")
                })
            }
            try scalingLeader?.start()
            scaler = try Sluiced.makeScaler(cfg, control: control, runtime: runtime, fleet: fleet, leader: scalingLeader, log: log)
        } catch {
            log.critical("scaling: \(error)")
            throw ExitCode(1)
        }

        let configPath = config
        let hash = ConfigHash(Sluiced.fileHash(config))
        let reload: @Sendable () -> ReloadResult = {
            Sluiced.reload(path: configPath, control: control, runtime: runtime, hash: hash, eventRules: eventRules,
                           scaler: scaler)
        }
        let backend = DaemonBackend(control: control, runtime: runtime, fleet: fleet, configPath: config, workers: workers,
                                    configHash: hash, log: log, eventRules: eventRules, scaler: scaler, reload: reload)
        let server = ControlServer(socketPath: cfg.control.socket, backend: backend, events: events,
                                   log: { Logger(label: "sluiced.control").info("\($0)") })
        do {
            try server.start()
        } catch {
            // A socket path the config names must work; the built-in default (for systemd's
            // RuntimeDirectory) may be out of reach when run by hand without root.
            guard cfg.control.socket == ControlConfig.defaultSocket else {
                log.critical("control socket: \(error)")
                throw ExitCode(1)
            }
            log.warning("control socket unavailable, running without the control API: \(error)")
        }
        var metricsServer: MetricsServer?
        if let m = cfg.control.metrics {
            let ms = MetricsServer(address: m.host, port: m.port, backend: backend)
            do {
                try ms.start()
            } catch {
                log.critical("metrics endpoint \(m): \(error)")
                throw ExitCode(1)
            }
            metricsServer = ms
        }

        for l in cfg.listeners {
            log.info("listening", metadata: ["listener": "\(l.name)", "bind": "\(l.bind)", "protocol": "\(l.protocolKind.rawValue)"])
        }
        log.info("ready", metadata: ["workers": "\(workers)", "config": "\(config)", "version": "\(Sluiced.version)",
                                     "control": "\(cfg.control.socket)", "restored": "\(saved.count)"])
        do {
            try scaler.start()
        } catch {
            log.critical("scaling: cannot start: \(error)")
            throw ExitCode(1)
        }
        _ = SystemdNotify.send("READY=1\nSTATUS=\(Sluiced.summary(cfg, workers: workers))\nMAINPID=\(getpid())")

        controlLoop(signalFd: signalFd, runtime: runtime, control: control, log: log, reload: reload)
        _ = SystemdNotify.send("STOPPING=1")
        server.stop()
        metricsServer?.stop()
        scaler.stop()
        scalingLeader?.stop()
        fleet?.stop()
        eventRules.stop()
        checker.stop()
        for t in threads { t.join() }
        checkerThread.join()
        runtime.stopLogging()
        log.info("stopped")
    }

    static func summary(_ cfg: Config, workers: Int) -> String {
        "\(cfg.listeners.count) listeners, \(cfg.targetGroups.count) target groups, \(workers) workers"
    }

    /// Re-reads the config file and applies it; the old config keeps running on any error.
    static func reload(path: String, control: ControlPlane, runtime: Runtime, hash: ConfigHash,
                       eventRules: EventRules, scaler: Scaler? = nil) -> ReloadResult {
        let log = Logger(label: "sluiced")
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        _ = SystemdNotify.send("RELOADING=1\nMONOTONIC_USEC=\(UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000)")
        defer { _ = SystemdNotify.send("READY=1") }
        let cfg: Config
        do {
            cfg = try ConfigLoader.load(path: path)
        } catch {
            let errors = error.errors.map(\.description)
            for e in errors { log.error("reload refused: \(e)") }
            return ReloadResult(ok: false, generation: runtime.planStore.generation, errors: errors)
        }
        // Rules first, so a rule this reload adds sees the reload's own event; put back if refused.
        // Rules whose outbox cannot be opened do not run; the rest of the reload stands (logged).
        let previousEvents = control.config.events
        eventRules.apply(cfg.events)
        do {
            try control.reload(cfg)
        } catch {
            eventRules.apply(previousEvents)
            log.error("reload refused: \(error.message)")
            return ReloadResult(ok: false, generation: runtime.planStore.generation, errors: [error.message])
        }
        scaler?.apply(cfg)
        hash.set(fileHash(path))
        log.info("reloaded", metadata: ["generation": "\(runtime.planStore.generation)"])
        _ = SystemdNotify.send("STATUS=\(summary(cfg, workers: runtime.workerCount))")
        return ReloadResult(ok: true, generation: runtime.planStore.generation, errors: [])
    }

    /// SHA-256-free content fingerprint (FNV-1a 64) of the config file, as hex.
    static func fileHash(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return String(h, radix: 16)
    }

    /// Waits for signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads. Sends the systemd
    /// watchdog keep-alive when asked for one.
    private func controlLoop(signalFd: Int32, runtime: Runtime, control: ControlPlane, log: Logger,
                             reload: @Sendable () -> ReloadResult) {
        guard let epoll = try? Epoll(capacity: 8), (try? epoll.add(signalFd, events: [.readable], data: 0)) != nil else {
            log.critical("control loop could not start")
            runtime.requestStop()
            return
        }
        // µs → ns, ping at half. WATCHDOG_USEC comes from the environment: capped at a day so
        // neither the product nor the Int32 timeout below can overflow.
        let watchdog = SystemdNotify.watchdogInterval.map { min($0, 86_400_000_000) * 1000 / 2 }
        var lastPing = Posix.monotonicNanos()
        var tlsFailures = TLSFailureLog()
        var udpFlowsFull = UDPFlowLog()
        while true {
            // ≤ 60 000 ms; at least every CounterLog.interval for the handshake-failure log.
            let tlsMillis = Int32(CounterLog.interval / 1_000_000)
            let timeout: Int32 = watchdog.map { min(Int32(min(max(1, $0 / 1_000_000), 60_000)), tlsMillis) } ?? tlsMillis
            _ = epoll.wait(timeoutMillis: timeout)
            tlsFailures.check(runtime: runtime, control: control, log: log, now: Posix.monotonicNanos())
            udpFlowsFull.check(runtime: runtime, control: control, log: log, now: Posix.monotonicNanos())
            if let w = watchdog, Posix.monotonicNanos() &- lastPing >= w {
                _ = SystemdNotify.send("WATCHDOG=1")
                lastPing = Posix.monotonicNanos()
            }
            while true {
                let sig = csluice_signalfd_read(signalFd)
                if sig <= 0 { break }
                switch sig {
                case SIGTERM, SIGINT:
                    log.info("stopping", metadata: ["signal": "\(sig == SIGTERM ? "SIGTERM" : "SIGINT")"])
                    runtime.requestStop()
                    return
                case SIGHUP:
                    log.info("reloading", metadata: ["signal": "SIGHUP"])
                    _ = reload()
                default:
                    break
                }
            }
        }
    }

    private func printError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
