#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Synchronization

/// A one-thread HTTP server on a Unix socket for client tests: it accepts connections one after
/// another, reads each request (head and Content-Length body), records it, and answers with the
/// next canned reply, written in the given pieces with a short pause between them so the client
/// sees split reads. A reply of `nil` pieces never answers (for timeout tests).
final class CannedServer: Sendable {
    let path: String
    private let listenFD: Int32
    private let requests = Mutex<[String]>([])
    private let finished = Mutex<Bool>(false)

    init(replies: [[[UInt8]]?], pause: Duration = .milliseconds(5)) throws {
        let dir = FileManager.default.temporaryDirectory.path
        path = "\(dir)/sluicectl-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        listenFD = try Self.listen(at: path)
        let fd = listenFD
        let thread = Thread { [self] in
            for reply in replies {
                let conn = accept(fd, nil, nil)
                guard conn >= 0 else { return }
                let request = Self.readRequest(conn)
                requests.withLock { $0.append(request) }
                if let reply {
                    for (i, piece) in reply.enumerated() {
                        if i > 0 { Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18) }
                        _ = piece.withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                } else {
                    Thread.sleep(forTimeInterval: 1.0)
                }
                close(conn)
            }
            finished.withLock { $0 = true }
        }
        thread.start()
    }

    deinit {
        close(listenFD)
        unlink(path)
    }

    /// Requests received so far, as text.
    var received: [String] { requests.withLock { $0 } }

    static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0, Glibc.listen(fd, 8) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return fd
    }

    static func readRequest(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = find(data, [13, 10, 13, 10]) {
                let head = String(decoding: data[..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if data.count >= end + 4 + length { break }
            }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data += buffer[..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}

/// Bytes of a text, for canned replies.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
