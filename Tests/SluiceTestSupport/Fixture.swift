import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where `Tests/Fixtures` is.
public let fixturesDirectory: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A test server from `Tests/Fixtures` (Python): started with its arguments, ready once it
/// printed `READY <port>` (an event, not a sleep), killed when the object goes.
public final class FixtureProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the creating test.
    public let port: UInt16
    private let process: Process

    /// The system's Python (where Debian's `python3-grpcio` is installed) when there is one,
    /// else whatever `python3` is on the PATH.
    public static let python: String =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"

    public init(script: String, arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [FixtureProcess.python, fixturesDirectory.appendingPathComponent(script).path] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = ""
        let handle = out.fileHandleForReading
        while !line.contains("\n") {
            let d = handle.availableData
            if d.isEmpty { break }
            line += String(decoding: d, as: UTF8.self)
        }
        let first = line.split(separator: "\n").first.map(String.init) ?? ""
        guard first.hasPrefix("READY "), let p = UInt16(first.dropFirst(6).trimmingCharacters(in: .whitespaces)) else {
            process.terminate()
            throw TestSocket.Failure("\(script) did not start: \(line)")
        }
        port = p
    }

    deinit { stop() }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// The test PKI made by `Tests/Fixtures/make_certs.sh` once per test process: a CA, server
/// certificates for `a.example` (RSA) and `b.example` (ECDSA), a client certificate, a
/// stranger from another CA and a file that is not a certificate.
public enum TestCerts {
    private static let made: Result<String, TestSocket.Failure> = {
        let dir = NSTemporaryDirectory() + "sluice-certs-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let r = try runTool("bash", [fixturesDirectory.appendingPathComponent("make_certs.sh").path, dir])
            guard r.status == 0 else { return .failure(TestSocket.Failure("make_certs.sh: \(r.output)")) }
            return .success(dir)
        } catch {
            return .failure(TestSocket.Failure("make_certs.sh: \(error)"))
        }
    }()

    /// The directory holding the files (`ca.pem`, `a.pem`, `a.key`, …).
    public static func directory() throws -> String { try made.get() }

    /// The path of one file of the test PKI.
    public static func path(_ name: String) throws -> String { try directory() + "/" + name }
}
