import SluiceCore
import SluiceHTTP
import SluiceHTTP2

/// An HTTP/2 connection to one target of an `http2`/`grpc` group (h2c to `http` groups, h2
/// over TLS with ALPN to `https` groups), multiplexing the requests of many exchanges.
///
/// An exchange sees an ordinary `UpstreamConnection` whose transport is a `StreamPipe`: it
/// writes the HTTP/1.1 request it would send any target, which is translated into a stream of
/// this connection, and reads the response translated back into HTTP/1.1 (trailers in the
/// chunked trailer section, so gRPC's travel end to end). Loop-bound; slab objects, reused.
final class H2Upstream {
    enum State {
        case free
        /// TCP connect (and TLS handshake) in flight; streams wait.
        case connecting
        case open
        /// GOAWAY received or the connection failed: no new streams; closes when idle.
        case draining
    }

    let slot: Int32
    var generation: UInt32 = 0
    var state = State.free
    var group = 0
    var target = 0
    var planGeneration: UInt64 = 0
    var socket: Descriptor? = nil
    var transport = Transport.plain
    var io = Readiness()
    var tlsPending = false
    /// `https` groups: the context and name to connect with, fixed when the connection opens.
    var tls: TLSClientContext?
    var serverName: String?
    var session = H2ClientSession()
    var input = ByteQueue()
    var output = ByteQueue()
    var streams: [H2UpstreamStream] = []
    var lastActivity: UInt64 = 0
    var timerAt: UInt64 = 0
    var connectDeadline: UInt64 = 0

    init(slot: Int32) { self.slot = slot }

    var fd: Int32 { socket?.raw ?? -1 }
    var timerToken: TimerToken { TimerToken(kind: .h2Upstream, slot: slot, generation: generation) }

    /// Room for another stream (the target's limit, as far as known).
    var hasRoom: Bool {
        (state == .open || state == .connecting) && streams.count < session.remoteMaxConcurrentStreams
    }
}

/// One request of an exchange on an `H2Upstream`: its pipe (the exchange's transport) and the
/// two translators. Pooled per worker.
final class H2UpstreamStream {
    /// The HTTP/2 stream id once the request head was submitted, else 0.
    var id: Int32 = 0
    /// Slot of the exchange's `UpstreamConnection`.
    var upstream: Int32 = -1
    let pipe: StreamPipe
    var request = HTTP1ToH2Request()
    var response = H2ToHTTP1Response(requestMethod: .get)
    var scratch: [UInt8] = []
    /// Response DATA bytes not yet credited back to the target (flow control).
    var unacked = 0
    var requestEnded = false
    var responseStarted = false
    var responseEnded = false
    /// The group speaks gRPC: the request gets `te: trailers`.
    var grpc = false

    init(queue: StreamPipeQueue) {
        pipe = StreamPipe(capacity: 64 * 1024, queue: queue)
        pipe.side = StreamPipe.targetSide
    }
}

@available(*, unavailable)
extension H2Upstream: Sendable {}

@available(*, unavailable)
extension H2UpstreamStream: Sendable {}
