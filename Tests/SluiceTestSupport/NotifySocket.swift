import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A systemd notification socket (`NOTIFY_SOCKET`) for a test daemon: `READY=1`, `STATUS=`,
/// `RELOADING=1` … arrive as datagrams, so a test can wait for readiness as an event even
/// when the daemon's log is not readable.
public final class NotifySocket {
    public let path: String
    private let directory: URL
    private let fd: Int32

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-n-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("notify.sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw TestSocket.Failure("cannot bind \(path)") }
        TestSocket.setTimeouts(fd, seconds: 10)
    }

    /// The next notification ("" after 10 s without one).
    public func next() -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
    }

    /// Waits for a notification containing `text`; false after 10 s of silence.
    public func wait(for text: String) -> Bool {
        while true {
            let m = next()
            if m.isEmpty { return false }
            if m.contains(text) { return true }
        }
    }

    deinit {
        close(fd)
        try? FileManager.default.removeItem(at: directory)
    }
}
