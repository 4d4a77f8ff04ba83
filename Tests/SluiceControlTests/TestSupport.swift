#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization
@testable import SluiceControl

/// A fresh directory under /tmp (short, for sun_path), removed by `remove()`.
struct TempDir {
    let path: String

    init() {
        var template = Array("/tmp/slctl-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// In-memory backend; `deregister(wait: true)` blocks until `release` is signalled.
final class FakeBackend: ControlBackend {
    let groupsState: Mutex<[String: GroupInfo]>
    let release = DispatchSemaphore(value: 0)
    let deregisterStarted = DispatchSemaphore(value: 0)
    let reloadOK = Mutex(true)
    let lastTimeout = Mutex<UInt64?>(nil)

    init() {
        let web = GroupInfo(
            name: "web", proto: "http", algorithm: "round_robin", crossZone: "true", failOpen: false,
            targets: [TargetInfo(address: "10.0.0.1:8080", zone: "zone-a", weight: 1, state: "healthy", isStatic: true)])
        groupsState = Mutex(["web": web])
    }

    func status() -> StatusInfo {
        StatusInfo(
            version: "0.1.0", uptimeSeconds: 12.5, zone: "zone-a", workers: 4, configFile: "/etc/sluice/sluice.yaml",
            configHash: "abc123", connectionsActive: 3, connectionsTotal: 42, planGeneration: 7)
    }

    func nodes() -> [NodeInfo] {
        [NodeInfo(name: "lb-a1", zone: "zone-a", version: "0.1.0", planGeneration: 7, started: "2025-01-01T00:00:00.000Z")]
    }
    func groups() -> [GroupInfo] { groupsState.withLock { $0.values.sorted { $0.name < $1.name } } }
    func group(_ name: String) -> GroupInfo? { groupsState.withLock { $0[name] } }

    func register(group: String, _ r: RegisterRequest) throws(ControlError) -> (created: Bool, target: TargetInfo) {
        let result: Result<(Bool, TargetInfo), ControlError> = groupsState.withLock { groups in
            guard var g = groups[group] else { return .failure(.notFound("no group \(group)")) }
            if r.weight == 99 { return .failure(.conflict("weight 99 is cursed")) }
            if let existing = g.targets.first(where: { $0.address == r.address }) { return .success((false, existing)) }
            let t = TargetInfo(
                address: r.address, zone: r.zone, weight: r.weight ?? 1, state: "unknown",
                registeredAt: "2025-01-01T00:00:00.000Z")
            g.targets.append(t)
            groups[group] = g
            return .success((true, t))
        }
        return try result.get()
    }

    func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlError) -> TargetInfo {
        lastTimeout.withLock { $0 = timeout }
        guard var target = groupsState.withLock({ $0[group]?.targets.first { $0.address == address } }) else {
            throw .notFound("no target \(address) in \(group)")
        }
        deregisterStarted.signal()
        if wait {
            release.wait()
            target.state = "drained"
        } else {
            target.state = "draining"
        }
        return target
    }

    func update(group: String, address: String, _ u: UpdateRequest) throws(ControlError) -> TargetInfo {
        let found: TargetInfo? = groupsState.withLock { groups in
            guard var g = groups[group], let i = g.targets.firstIndex(where: { $0.address == address }) else { return nil }
            if let w = u.weight { g.targets[i].weight = w }
            if let z = u.zone { g.targets[i].zone = z }
            groups[group] = g
            return g.targets[i]
        }
        guard let found else { throw .notFound("no target \(address) in \(group)") }
        return found
    }

    func reload() -> ReloadResult {
        reloadOK.withLock { $0 } ? ReloadResult(ok: true, generation: 8) : ReloadResult(ok: false, generation: 7, errors: ["line 3: bad key"])
    }

    func metrics() -> String { "# TYPE sluice_up gauge\nsluice_up 1\n" }
}

/// A parsed response.
struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    func json<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: Data(body)) }
}

/// Minimal blocking HTTP/1.1 client over a Unix or TCP socket.
final class RawClient {
    let fd: Int32
    var buffer: [UInt8] = []

    init(unixPath: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let rc = ControlSocket.withUnixAddress(unixPath) { connect(fd, $0, $1) } ?? -1
        guard rc == 0 else { close(fd); throw ControlSocketError(operation: "connect", errno: errno) }
        ControlSocket.setReceiveTimeout(fd, seconds: 10)
    }

    init(tcpPort: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = tcpPort.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw ControlSocketError(operation: "connect", errno: errno) }
        ControlSocket.setReceiveTimeout(fd, seconds: 10)
    }

    deinit { close(fd) }

    func send(_ method: String, _ target: String, body: String? = nil, headers: [String] = []) throws {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: sluice\r\n"
        for h in headers { text += h + "\r\n" }
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)" } else { text += "\r\n" }
        try ControlSocket.writeAll(fd, Array(text.utf8))
    }

    func request(_ method: String, _ target: String, body: String? = nil, headers: [String] = []) throws -> RawResponse {
        try send(method, target, body: body, headers: headers)
        return try readResponse()
    }

    func fill() throws {
        let more = try ControlSocket.read(fd)
        if more.isEmpty { throw ControlSocketError(operation: "read (eof)", errno: ECONNRESET) }
        buffer += more
    }

    func readHead() throws -> (Int, [String: String]) {
        while true {
            if let end = find([13, 10, 13, 10]) {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                var lines = head.components(separatedBy: "\r\n")
                let status = Int(lines.removeFirst().split(separator: " ")[1])!
                var headers: [String: String] = [:]
                for line in lines {
                    let p = line.split(separator: ":", maxSplits: 1)
                    headers[p[0].lowercased()] = p[1].trimmingCharacters(in: .whitespaces)
                }
                return (status, headers)
            }
            try fill()
        }
    }

    func readResponse() throws -> RawResponse {
        let (status, headers) = try readHead()
        let length = Int(headers["content-length"] ?? "0")!
        while buffer.count < length { try fill() }
        let body = Array(buffer[..<length])
        buffer.removeFirst(length)
        return RawResponse(status: status, headers: headers, body: body)
    }

    /// One chunk of a chunked body (nil at the last chunk).
    func readChunk() throws -> [UInt8]? {
        while find([13, 10]) == nil { try fill() }
        let lineEnd = find([13, 10])!
        let size = Int(String(decoding: buffer[..<lineEnd], as: UTF8.self), radix: 16)!
        buffer.removeFirst(lineEnd + 2)
        while buffer.count < size + 2 { try fill() }
        let chunk = Array(buffer[..<size])
        buffer.removeFirst(size + 2)
        return size == 0 ? nil : chunk
    }

    /// Whether bytes arrive within `milliseconds`.
    func hasData(within milliseconds: Int32) -> Bool { !buffer.isEmpty || ControlSocket.waitReadable(fd, milliseconds: milliseconds) }

    private func find(_ pattern: [UInt8]) -> Int? {
        guard buffer.count >= pattern.count else { return nil }
        for i in 0...(buffer.count - pattern.count) where Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
        return nil
    }
}

/// A started server over a fake backend in a temp dir.
struct Harness {
    let dir = TempDir()
    let backend = FakeBackend()
    let events = EventBus()
    let server: ControlServer
    var socketPath: String { dir.path + "/run/control.sock" }

    init(limits: ConnectionLimits = .control) throws {
        server = ControlServer(
            socketPath: dir.path + "/run/control.sock", backend: backend, events: events, limits: limits, log: { _ in })
        try server.start()
    }

    func client() throws -> RawClient { try RawClient(unixPath: socketPath) }

    func finish() {
        server.stop()
        dir.remove()
    }
}
