#if canImport(Glibc)
import Glibc
#endif
import SluiceConfig
import SluiceCore
import SluiceHTTP

/// One webhook attempt: a fresh HTTP/1.1 connection, `POST`, the answer read whole with
/// `HTTPResponseDecoder`. Any 2xx is success. Blocking, bounded by `timeoutNanos` in all
/// (connect, send and answer). Runs on a rule's delivery thread only.
enum WebhookClient {
    /// How long one attempt may take in all.
    static let timeoutNanos: UInt64 = 10 * 1_000_000_000
    /// Largest answer read.
    static let maxAnswerBytes = 1 << 20

    static func request(_ target: WebhookTarget, id: String, body: [UInt8], secret: [UInt8]?) -> [UInt8] {
        var head = "POST \(target.path) HTTP/1.1\r\nHost: \(target.authority)\r\nUser-Agent: sluice\r\n"
        head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        head += "X-Sluice-Event-Id: \(id)\r\n"
        if let secret, let signature = Signature.header(secret: secret, body: body) {
            head += "X-Sluice-Signature: \(signature)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// Delivers once; nil on success, else why not.
    static func post(_ target: WebhookTarget, id: String, body: [UInt8], secret: [UInt8]?,
                     timeoutNanos: UInt64 = WebhookClient.timeoutNanos) -> String? {
        let deadline = Posix.monotonicNanos() &+ timeoutNanos
        guard let address = SocketAddress(host: target.host, port: UInt16(clamping: target.port)) else {
            return "bad address \(target.host)"
        }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return "socket: \(OutboxFile.osError())" }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
        }
        if r != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { return "connect: \(OutboxFile.osError())" }
            guard wait(fd, Int16(POLLOUT), deadline) else { return "connect: timed out" }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { return "connect: \(String(cString: strerror(err)))" }
        }
        let bytes = request(target, id: id, body: body, secret: secret)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress.map { $0 + sent }, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                guard wait(fd, Int16(POLLOUT), deadline) else { return "send: timed out" }
                continue
            }
            return "send: \(OutboxFile.osError())"
        }
        var decoder = HTTPResponseDecoder()
        var status: Int?
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var received = 0
        do {
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR {
                        guard wait(fd, Int16(POLLIN), deadline) else { return "answer: timed out" }
                        continue
                    }
                    return "answer: \(OutboxFile.osError())"
                }
                var events: [HTTPResponseDecoder.Event]
                if n == 0 {
                    events = try decoder.finish()
                } else {
                    received += n
                    guard received <= maxAnswerBytes else { return "answer: larger than \(maxAnswerBytes) bytes" }
                    events = try decoder.feed(buffer[..<n])
                }
                for e in events {
                    switch e {
                    case .head(let h): status = h.status
                    case .body: break
                    case .end:
                        guard let status else { return "answer: no status" }
                        return (200..<300).contains(status) ? nil : "HTTP \(status)"
                    }
                }
                if n == 0 { return status.map { "HTTP \($0), answer cut short" } ?? "connection closed without an answer" }
            }
        } catch {
            return "answer: \(error)"
        }
    }

    /// Waits for `events` on `fd` until `deadline` (monotonic ns); false on timeout.
    private static func wait(_ fd: Int32, _ events: Int16, _ deadline: UInt64) -> Bool {
        while true {
            let now = Posix.monotonicNanos()
            guard now < deadline else { return false }
            let millis = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, millis)
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return true }  // let the next call report the error
        }
    }
}
