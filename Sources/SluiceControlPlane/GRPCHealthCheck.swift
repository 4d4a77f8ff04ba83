import SluiceConfig
import SluiceHTTP2

/// One `grpc.health.v1.Health/Check` call over HTTP/2 (SPEC §3: groups with
/// `protocol_version: grpc`): sans-I/O over an `H2ClientSession` — the checker feeds what it
/// read and writes what `output` produces; this decides.
///
/// Passes when the call's `grpc-status` is in the matcher and, for status 0, the reply says
/// SERVING (a matcher that lists another code, e.g. 12 UNIMPLEMENTED for servers without the
/// health service, passes on the code alone).
final class GRPCHealthCheck {
    enum Verdict: Equatable { case needMore, pass, fail }

    private let session = H2ClientSession()
    private var stream: Int32 = 0
    private var body: [UInt8] = []
    private var grpcStatus: Int?
    private var httpStatus = 0
    private let matcher: [ClosedRange<Int>]

    /// Opens the call: `service` is the checked service ("" for the whole server).
    init(authority: String, service: String, matcher: [ClosedRange<Int>], tls: Bool) {
        self.matcher = matcher
        let head = H2RequestHead(method: "POST", scheme: tls ? "https" : "http", authority: authority,
                                 path: GRPC.healthCheckPath,
                                 headers: [("content-type", "application/grpc"), ("te", "trailers"),
                                           ("user-agent", "sluice-health-check")])
        if let id = session.submitRequest(head, endStream: false) {
            stream = id
            GRPC.healthCheckRequest(service: service).withUnsafeBytes {
                _ = session.sendData(stream: id, $0, endStream: true)
            }
        }
    }

    /// Frames to send (preface, SETTINGS, the call), at most `capacity` bytes.
    func output(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        session.produceOutput(into: buffer, capacity: capacity)
    }

    var wantsWrite: Bool { session.wantsWrite }

    /// Feeds bytes read from the target.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        guard stream > 0 else { return .fail }
        if case .close = session.receive(bytes) { return .fail }
        while let e = session.nextEvent() {
            switch e {
            case .responseHead(let id, let status, let headers, let endStream) where id == stream:
                httpStatus = status
                if let s = headers.first("grpc-status") { grpcStatus = Int(s) }
                if endStream { return judge() }
            case .data(let id, let bytes) where id == stream:
                if body.count + bytes.count <= 4096 { body += bytes }
                session.consume(stream: id, bytes: bytes.count)
            case .trailers(let id, let headers) where id == stream:
                if let s = headers.first("grpc-status") { grpcStatus = Int(s) }
            case .endStream(let id) where id == stream:
                return judge()
            case .reset(let id, _) where id == stream:
                return .fail
            case .goaway:
                return .fail
            default:
                break
            }
        }
        return .needMore
    }

    /// The target closed the connection: a call not judged yet fails.
    func endOfInput() -> Verdict { .fail }

    private func judge() -> Verdict {
        guard httpStatus == 200, let code = grpcStatus, matcher.contains(where: { $0.contains(code) }) else { return .fail }
        if code != 0 { return .pass }
        // The reply: one length-prefixed gRPC message holding HealthCheckResponse.
        return GRPC.parseHealthCheckResponse(body) == .serving ? .pass : .fail
    }
}

@available(*, unavailable)
extension GRPCHealthCheck: Sendable {}
