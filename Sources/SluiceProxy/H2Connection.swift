import SluiceCore
import SluiceHTTP
import SluiceHTTP2

/// An HTTP/2 client connection (ALPN `h2` on an https listener, or prior-knowledge h2c on an
/// http listener): the socket and its transport, the nghttp2 server session, and the streams.
///
/// Each stream is served by an `HTTPConnection` of its own (a *stream session*) whose
/// transport is a `StreamPipe`: the request is translated into HTTP/1.1 bytes the session
/// reads, and the HTTP/1.1 response it writes is translated back into HEADERS, DATA and
/// trailers. So every stream goes through the same rules, balancing, desync checks, limits,
/// retries, access log and metrics as an HTTP/1.1 request (HAProxy's 1.8 h2 mux did the
/// same). Loop-bound; objects live in the worker's slab and are reused.
final class H2Connection {
    enum State {
        case free
        case open
        /// GOAWAY sent (abuse bound, protocol error, stop): flush, then close once the
        /// session has nothing more to say and its streams are done.
        case closing
    }

    let slot: Int32
    var generation: UInt32 = 0
    var state = State.free

    var plan: Plan?
    var listener = 0
    var client: Descriptor? = nil
    var transport = Transport.plain
    var io = Readiness()
    var session = H2ServerSession()

    // The client's facts, copied into every stream session.
    var clientAddress = SocketAddress()
    var sourceFamily: UInt8 = 0
    var sourceAddress: (UInt64, UInt64) = (0, 0)
    var clientText = HTTPWriter.AddressText()
    var clientCertHeaders: [UInt8] = []

    /// Bytes read from the client not yet given to the session, and frames not yet written.
    var input = ByteQueue()
    var output = ByteQueue()
    var streams: [H2Stream] = []
    var lastActivity: UInt64 = 0
    var timerAt: UInt64 = 0
    /// The client half-closed or the socket failed: finish what can be finished, then close.
    var clientGone = false
    /// Links of the list of connections whose streams moved bytes (`flushStreamPipes`).
    var isTouched = false
    /// Listed in the pipe queue for the end-of-turn flush.
    var flushDeferred = false
    var nextTouched: H2Connection? = nil

    init(slot: Int32) { self.slot = slot }

    var fd: Int32 { client?.raw ?? -1 }

    var timerToken: TimerToken { TimerToken(kind: .h2, slot: slot, generation: generation) }

    func stream(_ id: Int32) -> H2Stream? {
        for s in streams where s.id == id { return s }
        return nil
    }
}

/// One stream of an `H2Connection` and the stream session serving it. Pooled per worker.
final class H2Stream {
    var id: Int32 = 0
    /// Slot of the `HTTPConnection` serving the stream; -1 once it is closed.
    var session: Int32 = -1
    let pipe: StreamPipe
    var request = H2ToHTTP1Request()
    var response = HTTP1ToH2Response(requestMethod: .get)
    /// Scratch for translations (kept, so its capacity is reused).
    var scratch: [UInt8] = []
    /// DATA bytes received and not yet credited back to the client (flow control).
    var unacked = 0
    /// A gRPC request (`content-type: application/grpc…`): Sluice's own errors become a
    /// Trailers-Only 200 with a `grpc-status`.
    var grpc = false
    var requestEnded = false
    var responseStarted = false
    var responseEnded = false

    init(queue: StreamPipeQueue) {
        pipe = StreamPipe(capacity: 64 * 1024, queue: queue)
        scratch.reserveCapacity(16 * 1024)
    }
}

@available(*, unavailable)
extension H2Connection: Sendable {}

@available(*, unavailable)
extension H2Stream: Sendable {}
