import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real etcd (Debian's `etcd-server`, `/usr/bin/etcd`) for one test: a single member on free
/// loopback ports with its own data directory, never the system's service. `init` returns
/// once `/health` answers healthy; `stop`, `kill` and `restart` (same ports and data) let a
/// test take it away and bring it back.
public final class EtcdProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the creating test.
    public let clientPort: UInt16
    public let peerPort: UInt16
    public let name: String
    public let directory: URL
    private var process: Process?
    private let extraArguments: [String]
    /// Files of the test PKI (`TestCerts`) when etcd serves clients over TLS.
    public let tls: TLSFiles?

    /// etcd's server certificate and key, and the CA it requires client certificates from
    /// (`--client-cert-auth`) when `clientCA` is set.
    public struct TLSFiles: Sendable {
        public var cert: String
        public var key: String
        public var clientCA: String?
        /// What `curl` uses to reach it (health and compaction): the CA, and a client pair.
        public var ca: String
        public var clientCert: String?
        public var clientKey: String?

        public init(cert: String, key: String, ca: String, clientCA: String? = nil, clientCert: String? = nil,
                    clientKey: String? = nil) {
            self.cert = cert
            self.key = key
            self.ca = ca
            self.clientCA = clientCA
            self.clientCert = clientCert
            self.clientKey = clientKey
        }
    }

    /// Where the etcd binary is: `ETCD` from the environment, else Debian's path, else PATH.
    public static var binaryPath: String {
        if let env = ProcessInfo.processInfo.environment["ETCD"] { return env }
        for p in ["/usr/bin/etcd", "/usr/local/bin/etcd"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        return "etcd"
    }

    /// `etcdctl` when installed (Debian's `etcd-client`), for writes from another client.
    public static var etcdctlPath: String? {
        ["/usr/bin/etcdctl", "/usr/local/bin/etcdctl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public var endpoint: String { url(port: clientPort) }
    private func url(port: UInt16) -> String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)" }
    public var dataDirectory: String { directory.appendingPathComponent("data").path }
    public var logPath: String { directory.appendingPathComponent("etcd.log").path }
    public var isRunning: Bool { process?.isRunning ?? false }

    /// Starts etcd; `extraArguments` are added to its command line.
    public init(name: String = "etcd0", extraArguments: [String] = [], tls: TLSFiles? = nil) throws {
        self.name = name
        self.tls = tls
        self.extraArguments = extraArguments
        clientPort = try TestSocket.freePort()
        var p = try TestSocket.freePort()
        while p == clientPort { p = try TestSocket.freePort() }
        peerPort = p
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-etcd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    private func start(clientURL: String? = nil) throws {
        let peer = "http://127.0.0.1:\(peerPort)"
        let endpoint = clientURL ?? self.endpoint
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binaryPath)
        p.arguments = [
            "--name", name, "--data-dir", dataDirectory,
            "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "\(name)=\(peer)", "--initial-cluster-state", "new",
            "--initial-cluster-token", "sluice-test-\(clientPort)",
        ] + extraArguments + tlsArguments
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        try waitHealthy(seconds: 30, port: clientURL.flatMap { UInt16($0.split(separator: ":").last ?? "") })
    }

    private var tlsArguments: [String] {
        guard let tls else { return [] }
        var a = ["--cert-file", tls.cert, "--key-file", tls.key]
        if let ca = tls.clientCA { a += ["--client-cert-auth", "--trusted-ca-file", ca] }
        return a
    }

    /// One request through curl (TLS endpoints): status and body.
    private func curl(port: UInt16, path: String, body: String?) throws -> (status: Int, text: String) {
        guard let tls else { throw TestSocket.Failure("curl is for TLS endpoints") }
        var args = ["-s", "--max-time", "3", "--cacert", tls.ca, "-o", "-", "-w", "\n%{http_code}"]
        if let c = tls.clientCert, let k = tls.clientKey { args += ["--cert", c, "--key", k] }
        if let body { args += ["-X", "POST", "-d", body] }
        let r = try runTool("curl", args + [url(port: port) + path])
        let lines = r.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// Polls `/health` until it says healthy or `seconds` pass.
    public func waitHealthy(seconds: Double, port: UInt16? = nil) throws {
        let clientPort = port ?? self.clientPort
        let deadline = Date().addingTimeInterval(seconds)
        var last = "no answer"
        while Date() < deadline {
            guard isRunning else { break }
            do {
                let r: (status: Int, text: String)
                if tls != nil {
                    r = try curl(port: clientPort, path: "/health", body: nil)
                } else {
                    let a = try HTTPClient.request(
                        port: clientPort, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    r = (a.status, a.text)
                }
                if r.status == 200, r.text.contains("\"true\"") { return }
                last = "HTTP \(r.status) \(r.text)"
            } catch {
                last = "\(error)"
            }
            usleep(20_000)  // poll interval of a condition with a deadline
        }
        throw TestSocket.Failure("etcd did not become healthy (\(last)):\n\(log.suffix(3000))")
    }

    /// What etcd wrote so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    public func stop() {
        guard let p = process, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGTERM)
        if !waitExit(p, seconds: 10) {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }

    /// SIGKILL and wait for the exit.
    public func kill() {
        guard let p = process, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// Starts etcd again on the same ports and data directory (after `stop` or `kill`).
    public func restart() throws {
        stop()
        try start()
    }

    /// Starts etcd again on its data directory but answering clients on `port` only, so
    /// clients of `endpoint` still cannot reach it (`restart()` goes back to the usual port).
    public func restart(onClientPort port: UInt16) throws {
        stop()
        try start(clientURL: url(port: port))
    }

    private func waitExit(_ p: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        return !p.isRunning
    }

    /// Compacts the history up to `revision` through the gateway (on `port` when etcd was
    /// restarted on another client port).
    public func compact(revision: Int64, port: UInt16? = nil) throws {
        let clientPort = port ?? self.clientPort
        let body = "{\"revision\":\"\(revision)\",\"physical\":true}"
        if tls != nil {
            let r = try curl(port: clientPort, path: "/v3/kv/compaction", body: body)
            guard r.status == 200 else { throw TestSocket.Failure("compaction: HTTP \(r.status) \(r.text)") }
            return
        }
        let r = try HTTPClient.request(port: clientPort, "POST /v3/kv/compaction HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        guard r.status == 200 else { throw TestSocket.Failure("compaction: HTTP \(r.status) \(r.text)") }
    }

    /// Runs `etcdctl` against this etcd; nil when it is not installed.
    public func etcdctl(_ arguments: [String]) throws -> (status: Int32, output: String)? {
        guard let path = Self.etcdctlPath else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        var tlsArgs: [String] = []
        if let tls {
            tlsArgs = ["--cacert", tls.ca]
            if let c = tls.clientCert, let k = tls.clientKey { tlsArgs += ["--cert", c, "--key", k] }
        }
        p.arguments = ["--endpoints", endpoint, "--dial-timeout", "3s", "--command-timeout", "5s"] + tlsArgs + arguments
        p.environment = ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
