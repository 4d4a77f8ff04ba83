#if canImport(Glibc)
import Glibc
#endif
import SluiceConfig
import SluiceCore
import SluiceHTTP

/// One webhook attempt: a fresh HTTP/1.1 connection (TLS for `https://`, with `tls`), `POST`, the
/// answer read whole with `HTTPResponseDecoder`. Any 2xx is success. Blocking, bounded by
/// `timeoutNanos` in all (connect, handshake, send and answer). Runs on a rule's delivery thread only.
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

    /// Why an attempt failed.
    struct Failure: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// Delivers once; nil on success, else why not.
    static func post(_ target: WebhookTarget, id: String, body: [UInt8], secret: [UInt8]?, tls: TLSClientContext?,
                     timeoutNanos: UInt64 = WebhookClient.timeoutNanos) -> String? {
        do throws(Failure) {
            try exchange(target, request: request(target, id: id, body: body, secret: secret), tls: tls,
                         deadline: Posix.monotonicNanos() &+ timeoutNanos)
            return nil
        } catch {
            return error.text
        }
    }

    private static func exchange(_ target: WebhookTarget, request bytes: [UInt8], tls: TLSClientContext?,
                                 deadline: UInt64) throws(Failure) {
        guard let address = SocketAddress(host: target.host, port: UInt16(clamping: target.port)) else {
            throw Failure("bad address \(target.host)")
        }
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd = socket(address.family, flags, 0)
        guard fd >= 0 else { throw Failure("socket: \(OutboxFile.osError())") }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
        }
        if r != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { throw Failure("connect: \(OutboxFile.osError())") }
            guard wait(fd, Int16(POLLOUT), deadline) else { throw Failure("connect: timed out") }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { throw Failure("connect: \(String(cString: strerror(err)))") }
        }
        var stream: TLSStream?
        if target.tls {
            guard let tls, let s = tls.makeStream(fd: fd, serverName: target.serverName) else {
                throw Failure("TLS: cannot make a session")
            }
            stream = s
            handshake: while true {
                switch s.handshake() {
                case .done: break handshake
                case .wantsRead: guard wait(fd, Int16(POLLIN), deadline) else { throw Failure("TLS handshake: timed out") }
                case .wantsWrite: guard wait(fd, Int16(POLLOUT), deadline) else { throw Failure("TLS handshake: timed out") }
                case .failed(let f): throw Failure("TLS handshake: \(f.rawValue) \(s.failureDetail)")
                }
            }
        }
        defer { stream?.shutdown() }
        try sendAll(fd, stream, bytes, deadline)
        try readAnswer(fd, stream, deadline)
    }

    /// One read or write step of the plain socket or the TLS stream.
    private static func step(_ fd: Int32, _ stream: TLSStream?, _ pointer: UnsafeMutableRawPointer, _ count: Int,
                             write: Bool) -> TransportResult {
        if let stream {
            return write ? stream.write(from: pointer, count: count) : stream.read(into: pointer, count: count)
        }
        let n = write ? send(fd, pointer, count, Int32(MSG_NOSIGNAL)) : recv(fd, pointer, count, 0)
        if n > 0 { return .bytes(n) }
        if n == 0 { return write ? .wouldBlock : .closed }
        if errno == EAGAIN || errno == EINTR { return .wouldBlock }
        return .failed(Errno(errno))
    }

    private static func sendAll(_ fd: Int32, _ stream: TLSStream?, _ bytes: [UInt8], _ deadline: UInt64) throws(Failure) {
        var buffer = bytes
        var sent = 0
        while sent < buffer.count {
            let r = buffer.withUnsafeMutableBytes { raw -> TransportResult in
                guard let base = raw.baseAddress else { return .closed }
                return step(fd, stream, base + sent, raw.count - sent, write: true)
            }
            switch r {
            case .bytes(let n), .drained(let n): sent += n
            case .wouldBlock, .wantsWrite: guard wait(fd, Int16(POLLOUT), deadline) else { throw Failure("send: timed out") }
            case .wantsRead: guard wait(fd, Int16(POLLIN), deadline) else { throw Failure("send: timed out") }
            case .closed: throw Failure("send: connection closed")
            case .failed(let e): throw Failure("send: \(e)")
            }
        }
    }

    private static func readAnswer(_ fd: Int32, _ stream: TLSStream?, _ deadline: UInt64) throws(Failure) {
        var decoder = HTTPResponseDecoder()
        var status: Int?
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var received = 0
        do {
            while true {
                let r = buffer.withUnsafeMutableBytes { raw -> TransportResult in
                    guard let base = raw.baseAddress else { return .closed }
                    return step(fd, stream, base, raw.count, write: false)
                }
                var events: [HTTPResponseDecoder.Event]
                var ended = false
                switch r {
                case .bytes(let n), .drained(let n):
                    guard n > 0 else { continue }
                    received += n
                    guard received <= maxAnswerBytes else { throw Failure("answer: larger than \(maxAnswerBytes) bytes") }
                    events = try decoder.feed(buffer[..<n])
                case .wouldBlock, .wantsRead:
                    guard wait(fd, Int16(POLLIN), deadline) else { throw Failure("answer: timed out") }
                    continue
                case .wantsWrite:
                    guard wait(fd, Int16(POLLOUT), deadline) else { throw Failure("answer: timed out") }
                    continue
                case .closed:
                    ended = true
                    events = try decoder.finish()
                case .failed(let e):
                    throw Failure("answer: \(e)")
                }
                for e in events {
                    switch e {
                    case .head(let h): status = h.status
                    case .body: break
                    case .end:
                        guard let status else { throw Failure("answer: no status") }
                        if (200..<300).contains(status) { return }
                        throw Failure("HTTP \(status)")
                    }
                }
                if ended {
                    throw Failure(status.map { "HTTP \($0), answer cut short" } ?? "connection closed without an answer")
                }
            }
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure("answer: \(error)")
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
