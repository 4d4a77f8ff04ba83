import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The real `sluiced` binary, started on a config written to a fresh temporary directory.
/// `start` returns once the daemon logged `ready` (every listener bound), so tests never
/// sleep to wait for it.
public final class SluicedProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the creating test; the log is behind a Mutex.
    public let directory: URL
    public let configPath: String
    private let process: Process
    private let logText = Mutex<String>("")
    private let ready = DispatchSemaphore(value: 0)
    private let outputClosed = DispatchSemaphore(value: 0)

    /// Path of the `sluiced` built next to the test bundle (`.build/<config>/sluiced`).
    public static var binaryPath: String {
        if let env = ProcessInfo.processInfo.environment["SLUICED"] { return env }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test runner may sit inside a .xctest bundle directory.
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("sluiced").path), dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("sluiced").path
    }

    /// Writes `yaml` as `sluice.yaml` in a new temp dir and starts the daemon on it.
    /// `environment` adds variables to the daemon's environment; `stderr` sends its stderr
    /// somewhere else than the log pipe (then readiness cannot be read from the log: pass
    /// `waitForReady: false` and wait on a `NotifySocket`).
    public init(yaml: String, arguments: [String] = [], waitForReady: Bool = true,
                environment: [String: String] = [:], stderr: FileHandle? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        configPath = directory.appendingPathComponent("sluice.yaml").path
        var text = yaml
        if !text.contains("\ncontrol:") && !text.hasPrefix("control:") {
            // Every test daemon gets its own control socket and state file.
            text += "control:\n  socket: \(directory.path)/control.sock\n  state: \(directory.path)/state.json\n"
        }
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: SluicedProcess.binaryPath)
        process.arguments = ["--config", configPath] + arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardError = stderr ?? pipe
        process.standardOutput = pipe
        try process.run()
        let handle = pipe.fileHandleForReading
        let readerThread = Thread { [self] in
            var signalled = false
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                let text = String(decoding: data, as: UTF8.self)
                let all = logText.withLock { $0 += text; return $0 }
                if !signalled && (all.contains("info ready") || all.contains("\"msg\":\"ready\"")) {
                    signalled = true
                    ready.signal()
                }
            }
            if !signalled { ready.signal() }  // exited before ready: wake the waiter
            outputClosed.signal()
        }
        readerThread.start()
        if waitForReady {
            guard ready.wait(timeout: .now() + 30) == .success, isRunning else {
                terminate()
                throw TestSocket.Failure("sluiced did not become ready:\n\(log)")
            }
        }
    }

    /// The daemon's control socket (when the test did not choose one).
    public var controlSocket: String { directory.appendingPathComponent("control.sock").path }
    public var statePath: String { directory.appendingPathComponent("state.json").path }

    /// Everything the daemon wrote to stdout and stderr so far.
    public var log: String { logText.withLock { $0 } }

    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }

    public func send(signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits up to `seconds` for the daemon to exit; returns its status, or nil if it still runs.
    public func waitForExit(seconds: Double) -> Int32? {
        let done = DispatchSemaphore(value: 0)
        let t = Thread { [process] in
            process.waitUntilExit()
            done.signal()
        }
        t.start()
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        // Let the reader take the last lines the daemon wrote before it exited.
        _ = outputClosed.wait(timeout: .now() + 5)
        outputClosed.signal()
        return process.terminationStatus
    }

    /// SIGKILLs the daemon if it still runs and removes its directory.
    public func terminate() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { terminate() }

    /// Runs `sluiced` with `arguments` to completion; returns exit status and combined output.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binaryPath)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
