import ArgumentParser
import CSluice
import Logging
import SluiceConfig
import SluiceCore
import SluiceProxy
#if canImport(Glibc)
import Glibc
#endif

/// `sluiced`: the load balancer daemon. The main thread is the control loop (signals now;
/// the control socket and health checks later); workers run the data plane.
@main
struct Sluiced: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "sluiced",
        abstract: "Sluice: a layer 4/7 load balancer daemon.",
        discussion: "Runs in the foreground until SIGTERM or SIGINT, then finishes open connections (up to node.shutdown_grace) and exits 0.",
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
            print("\(config): ok (\(cfg.listeners.count) listeners, \(cfg.targetGroups.count) target groups)")
            return
        }

        let plan: Plan
        do {
            plan = try Plan(config: cfg, generation: 1)
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
        let threads: [WorkerThread]
        do {
            threads = try runtime.start()
        } catch {
            log.critical("cannot start worker threads: \(error)")
            throw ExitCode(1)
        }
        for l in cfg.listeners {
            log.info("listening", metadata: ["listener": "\(l.name)", "bind": "\(l.bind)", "protocol": "\(l.protocolKind.rawValue)"])
        }
        log.info("ready", metadata: ["workers": "\(workers)", "config": "\(config)", "version": "\(Sluiced.version)"])
        if cfg.control.metrics != nil || cfg.control.socket != ControlConfig.defaultSocket {
            log.notice("control socket and metrics are not served by this version; control settings are validated only")
        }

        try controlLoop(signalFd: signalFd, runtime: runtime, log: log)
        for t in threads { t.join() }
        runtime.stopLogging()
        log.info("stopped")
    }

    /// Waits for signals: SIGTERM/SIGINT stop gracefully; SIGHUP is acknowledged.
    private func controlLoop(signalFd: Int32, runtime: Runtime, log: Logger) throws {
        let epoll = try Epoll(capacity: 8)
        try epoll.add(signalFd, events: [.readable], data: 0)
        while true {
            _ = epoll.wait(timeoutMillis: -1)
            while true {
                let sig = csluice_signalfd_read(signalFd)
                if sig <= 0 { break }
                switch sig {
                case SIGTERM, SIGINT:
                    log.info("stopping", metadata: ["signal": "\(sig == SIGTERM ? "SIGTERM" : "SIGINT")"])
                    runtime.requestStop()
                    return
                case SIGHUP:
                    log.warning("SIGHUP received: configuration reload is not available in this version; still running the loaded configuration")
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
