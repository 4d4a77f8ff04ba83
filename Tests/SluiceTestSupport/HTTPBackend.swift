import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real HTTP/1.1 target (`Tests/Fixtures/http_backend.py`, Python's threaded server) on
/// a loopback port. It answers every request with a JSON description of what arrived.
public final class HTTPBackend: @unchecked Sendable {
    // @unchecked: `process` is only touched by the creating test.
    public let port: UInt16
    public let name: String
    private let process: Process

    /// `failing`: every path but `/healthz` answers 500 (checks pass, traffic fails).
    public init(name: String, port requested: UInt16 = 0, failing: Bool = false) throws {
        self.name = name
        var fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        fixtures.appendPathComponent("Fixtures/http_backend.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", fixtures.path, String(requested), name] + (failing ? ["failing"] : [])
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is "READY <port>": an event, not a sleep.
        var line = ""
        let handle = out.fileHandleForReading
        while !line.contains("\n") {
            let d = handle.availableData
            if d.isEmpty { break }
            line += String(decoding: d, as: UTF8.self)
        }
        guard line.hasPrefix("READY "), let p = UInt16(line.dropFirst(6).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw TestSocket.Failure("http backend did not start: \(line)")
        }
        port = p
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Requests this backend has seen (method and target), excluding `/__stats` itself.
    public func stats() throws -> (count: Int, paths: [String]) {
        let r = try HTTPClient.request(port: port, "GET /__stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let obj = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] ?? [:]
        return (obj["requests"] as? Int ?? -1, obj["paths"] as? [String] ?? [])
    }

    /// Connections this backend has accepted, not counting the one this call opens.
    public func acceptedConnections() throws -> Int {
        let r = try HTTPClient.request(port: port, "GET /__stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let obj = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] ?? [:]
        return (obj["connections"] as? Int ?? 0) - 1
    }
}

/// A raw HTTP/1.1 client over a blocking socket: sends exactly the bytes given.
public enum HTTPClient {
    public struct Response {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public var raw: [UInt8]
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Sends `raw` on a new connection and reads until the server closes.
    public static func exchange(port: UInt16, _ raw: String, timeoutSeconds: Int = 10) throws -> [UInt8] {
        let fd = try TestSocket.connect(port: port, timeoutSeconds: timeoutSeconds)
        defer { close(fd) }
        try TestSocket.sendAll(fd, Array(raw.utf8))
        return try TestSocket.receiveAll(fd)
    }

    /// Sends one request (ending the connection after it) and parses the first response.
    public static func request(port: UInt16, _ raw: String) throws -> Response {
        let bytes = try exchange(port: port, raw)
        guard let r = parse(bytes).first else {
            throw TestSocket.Failure("no HTTP response: \(String(decoding: bytes, as: UTF8.self))")
        }
        return r
    }

    /// Splits a byte stream into responses (Content-Length and chunked framing).
    public static func parse(_ bytes: [UInt8]) -> [Response] {
        var out: [Response] = []
        var i = 0
        let crlf2: [UInt8] = [13, 10, 13, 10]
        while i < bytes.count {
            guard let headEnd = find(crlf2, in: bytes, from: i) else { break }
            let headText = String(decoding: bytes[i..<headEnd], as: UTF8.self)
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst()
            let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
            let headers = lines.compactMap { l -> (String, String)? in
                guard let c = l.firstIndex(of: ":") else { return nil }
                return (String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))
            }
            var j = headEnd + 4
            var body: [UInt8] = []
            let te = headers.first { $0.0.lowercased() == "transfer-encoding" }?.1.lowercased()
            if te == "chunked" {
                while j < bytes.count, let lineEnd = find([13, 10], in: bytes, from: j) {
                    let size = Int(String(decoding: bytes[j..<lineEnd], as: UTF8.self)
                        .split(separator: ";").first ?? "", radix: 16) ?? 0
                    j = lineEnd + 2
                    if size == 0 {
                        j = (find([13, 10], in: bytes, from: j) ?? j) + 2
                        break
                    }
                    body += bytes[j..<min(bytes.count, j + size)]
                    j += size + 2
                }
            } else if let cl = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }),
                      status >= 200, status != 204, status != 304 {
                body = Array(bytes[j..<min(bytes.count, j + cl)])
                j += cl
            } else if status >= 200 && status != 204 && status != 304 && status != 101 {
                body = Array(bytes[j...])
                j = bytes.count
            }
            out.append(Response(status: status, headers: headers, body: body, raw: Array(bytes[i..<min(j, bytes.count)])))
            i = j
        }
        return out
    }

    public static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var k = from
        while k + needle.count <= hay.count {
            if hay[k] == needle[0] && Array(hay[k..<k + needle.count]) == needle { return k }
            k += 1
        }
        return nil
    }
}

/// Runs a command-line client (curl, wrk …) to completion.
public func runTool(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [path] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
