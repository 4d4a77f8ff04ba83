import Foundation
import SluiceBalancer
import SluiceTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A UDP client socket connected to one address (so it takes datagrams from that address
/// only), with a receive timeout. Each client has its own local port: its own flow.
final class UDPClient {
    let fd: Int32
    let localPort: UInt16

    init(host: String = "127.0.0.1", port: UInt16, timeoutMillis: Int = 3000) throws {
        let fd = try TestSocket.connect(port: port, host: host, type: Int32(SOCK_DGRAM.rawValue))
        var tv = timeval(tv_sec: timeoutMillis / 1000, tv_usec: (timeoutMillis % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var big: Int32 = 4 * 1024 * 1024
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, socklen_t(MemoryLayout<Int32>.size))
        localPort = TestSocket.localPort(fd)
        self.fd = fd
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard n == bytes.count else { throw TestSocket.Failure("send: \(n), errno \(errno)") }
    }

    /// The next datagram, or a failure after the receive timeout.
    func receive() throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 70_000)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { throw TestSocket.Failure("no datagram (errno \(errno))") }
        return Array(buf[0..<n])
    }

    func exchange(_ bytes: [UInt8]) throws -> [UInt8] {
        try send(bytes)
        return try receive()
    }

    /// Sends `text` and returns the name of the target that answered (the echo target puts
    /// `NAME|` in front).
    func target(_ text: String = "ping") throws -> String {
        let answer = try exchange(Array(text.utf8))
        return String(decoding: answer.prefix { $0 != UInt8(ascii: "|") }, as: UTF8.self)
    }
}

/// The UDP (and TCP) echo target of `Tests/Fixtures/udp_echo.py`.
func udpEcho(_ name: String, host: String = "127.0.0.1", tcp: Bool = true) throws -> FixtureProcess {
    try FixtureProcess(script: "udp_echo.py", arguments: [name, "--host", host] + (tcp ? [] : ["--no-tcp"]))
}

/// A port free for both UDP and TCP on `host` a moment ago.
func freeUDPPort(host: String = "127.0.0.1") throws -> UInt16 {
    for _ in 0..<20 {
        let port = try TestSocket.freePort()
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var ok = false
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &a.sin6_addr)
            ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        }
        if ok { return port }
    }
    throw TestSocket.Failure("no port free for UDP and TCP")
}

/// A config with one udp (or tcp_udp) listener `dns` in front of one group `dns`.
func udpConfig(bind: String, targets: [String], protocol kind: String = "udp", listenerExtra: [String] = [],
               groupExtra: [String] = ["health_check: off"], workers: Int = 1) -> String {
    var lines = [
        "node:",
        "  workers: \(workers)",
        "  shutdown_grace: 5s",
        "listeners:",
        "  - name: dns",
        "    protocol: \(kind)",
        "    bind: \"\(bind)\"",
        "    default: { forward: dns }",
    ]
    lines += listenerExtra.map { "    " + $0 }
    lines += ["target_groups:", "  - name: dns", "    protocol: \(kind)"]
    lines += groupExtra.map { "    " + $0 }
    lines += ["    targets:"] + targets.map { "      - { address: \"\($0)\" }" }
    return lines.joined(separator: "\n") + "\n"
}

/// Where `flow_hash` sends an IPv4 client (Maglev over `targets` at equal weights, the
/// client's port and address hashed with the listener name's seed): the index in `targets`.
func maglevTarget(clientPort: UInt16, clientAddress: [UInt8] = [127, 0, 0, 1], listener: String,
                  targets: [String]) -> Int? {
    let bytes = [UInt8(clientPort >> 8), UInt8(clientPort & 0xFF)] + clientAddress
    let hash = bytes.withUnsafeBytes { StableHash.hash($0, seed: StableHash.hash(listener)) }
    let table = MaglevTable(keys: targets, weights: targets.map { _ in EffectiveWeight.from(configured: 1) })
    return table.lookup(hash)
}

/// Polls `condition` until `seconds` passed.
func waitFor(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try !condition() {
        if Date() > deadline { throw TestSocket.Failure("timed out waiting until \(what)") }
        usleep(20_000)
    }
}
