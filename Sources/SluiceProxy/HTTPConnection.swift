import SluiceBalancer
import SluiceCore
import SluiceHTTP

/// Bytes waiting in a pool buffer: `[start, end)` is unconsumed.
struct ByteQueue {
    var base: UnsafeMutableRawPointer? = nil
    var start = 0
    var end = 0

    var count: Int { end - start }
    var isEmpty: Bool { start == end }

    /// The unconsumed bytes.
    var bytes: UnsafeRawBufferPointer {
        guard let b = base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: b + start, count: end - start)
    }

    /// Moves the unconsumed bytes to the front so more can be read behind them.
    mutating func compact() {
        guard let b = base, start > 0 else { return }
        if end > start { (b).copyMemory(from: b + start, byteCount: end - start) }
        end -= start
        start = 0
    }
}

/// How far one message body (request or response) has been forwarded.
struct BodyProgress {
    var framing = BodyFraming.none
    /// Content-Length bytes still to forward.
    var remaining: UInt64 = 0
    var chunks = ChunkedBodyScanner()
    /// Body bytes in the buffer already validated by the chunk scanner, not yet forwarded.
    var chunkReady = 0
    /// The chunk scanner saw the end of the body (within `chunkReady`).
    var chunkEnded = false
    var done = true

    mutating func begin(_ framing: BodyFraming) {
        self.framing = framing
        chunkReady = 0
        chunkEnded = false
        switch framing {
        case .none:
            done = true
        case .contentLength(let n):
            remaining = n
            done = n == 0
        case .chunked:
            chunks.reset()
            done = false
        case .untilClose:
            done = false
        }
    }

    /// Runs the chunk scanner over the bytes of `q` it has not seen (from `chunkReady` on).
    /// False when the chunked framing is broken (bad chunk size, missing CRLF, ...): the
    /// sender's fault, and the body's end is lost.
    mutating func scanChunks(_ q: ByteQueue) -> Bool {
        guard chunkReady < q.count else { return true }
        switch chunks.scan(UnsafeRawBufferPointer(rebasing: q.bytes[chunkReady...])) {
        case .consumed(let k):
            chunkReady += k
        case .finished(let k):
            chunkReady += k
            chunkEnded = true
        case .error:
            return false
        }
        return true
    }
}

/// A pooled or busy connection to an HTTP target. Pooled ones stay registered with epoll,
/// so a target that closes an idle connection is noticed and the socket dropped.
///
/// The object owns its target socket as a `Descriptor`, from `socket()` (through any time in
/// the idle pool) until `Worker.discard` unregisters it from the `FdTable` and drops it.
final class UpstreamConnection {
    let slot: Int32
    /// The target socket; nil while the slot is free.
    var socket: Descriptor? = nil
    var transport = Transport.plain
    var group = 0
    var target = 0
    var planGeneration: UInt64 = 0
    /// Slot of the client connection using it, or -1 while pooled.
    var owner: Int32 = -1
    /// Readiness of `socket` as `transport` sees it (`hangup`: the target's FIN or hang-up).
    var io = Readiness()
    var connecting = false
    /// Connected, and the TLS handshake to the target is under way (`connecting` is still
    /// true: the exchange waits for it like for the connect).
    var tlsPending = false
    var idleSince: UInt64 = 0
    /// The target's shared live state (in-flight count, passive checks).
    var runtime: TargetRuntime?

    init(slot: Int32) { self.slot = slot }

    /// The target socket's number, for a system call. Only while the object is in use (it
    /// has a socket from `socket()` until `Worker.discard`).
    @inline(__always)
    var fd: Int32 {
        if let raw = socket?.raw { return raw }
        if case .stream = transport { return -1 }  // an HTTP/2 stream: no socket of its own
        preconditionFailure("target socket used after discard")
    }
}

/// One exchange on a client session: the sans-I/O machine that decides, and what its
/// decisions act on — the target connection, the bytes to and from it, the message framing
/// progress, the picking state, and the access-log record. HTTP/1 carries one at a time.
/// A class, reused by its session for every request (no allocation per request), so that its
/// queues and counters are separate stored properties that `inout` can reach side by side.
final class HTTPExchange {
    var machine = HTTP1Exchange()

    var upstream: UpstreamConnection?
    var group = 0
    var tried = TriedTargets()
    var keyHash: UInt64 = 0
    /// The request lacks the group's hash key: pick by round robin.
    var keyMissing = false
    /// Target named by a valid stickiness cookie, or -1.
    var stickyTarget = -1
    /// Surge queue (SPEC §12): the target (index in the connection's Plan) whose slot this
    /// exchange holds before attaching to it, or -1; whether it waits in `surgeQueue` now;
    /// when it first queued (0: never) and until when it may wait; whether it was just
    /// handed a slot (its turn: it does not queue behind others again); whether Sluice's
    /// 503 says `Retry-After` (a queue timeout).
    var heldTarget = -1
    var surgeQueued = false
    var surgeQueue: SurgeQueue?
    var surgeSince: UInt64 = 0
    var surgeDeadline: UInt64 = 0
    var surgeTurn = false
    var retryAfter = false

    /// Head bytes Sluice writes to the target (the rewritten request head), kept until the
    /// exchange ends so a retry can send it again.
    var toTarget = ByteQueue()
    /// Response bytes read from the target.
    var fromTarget = ByteQueue()
    var request = BodyProgress()
    var response = BodyProgress()
    var responseParser: HTTPResponseParser
    /// The request's HTTP minor version (an HTTP/1.0 client that keeps the connection needs
    /// `Connection: keep-alive` on every answer).
    var versionMinor: UInt8 = 1
    /// Tunnels: the target sent FIN.
    var targetFinished = false

    // The access-log record (method and path bytes live in the session's `logScratch`).
    /// The answer came from Sluice (error, fixed response, redirect), not a target.
    var ownAnswer = false
    /// The request was handed to `group` (metrics label it with the group even when Sluice
    /// answered 502/503/504 for it).
    var forwarded = false
    var logMethodLength = 0
    var logPathLength = 0
    var logAction = -1
    var logStatus = 0
    var logTarget = -1
    var logVerdict = DesyncVerdict(klass: .compliant, reason: .none)
    var bytesFromClient: UInt64 = 0
    var bytesToClient: UInt64 = 0
    var targetStarted: UInt64 = 0

    init() { responseParser = HTTPResponseParser(limits: HTTPLimits()) }

    /// The final response head went to the client (its body may still be on the way).
    var responseHeadDone: Bool {
        switch machine.state {
        case .exchanging(_, .streaming), .exchanging(_, .complete): true
        default: false
        }
    }
}

/// A client session on an `http` listener: the client socket and its transport, the buffers,
/// the request parser and keep-alive/pipelining. Pipelined requests wait in `input` and are
/// served in order, one `exchange` at a time.
final class HTTPConnection {
    enum State {
        case free
        /// An `accept_proxy_protocol` listener: the PROXY header is read, before anything else
        /// (bounded by min(10 s, header timeout)).
        case preamble
        /// A `https` listener's TLS handshake is under way (bounded by its handshake timeout).
        case handshaking
        /// The exchange drives: reading a request head, forwarding, answering, tunnelling.
        case open
        /// Our side is shut for writing after an error answer; what the client still sends is
        /// read and dropped for a moment, so the answer is not lost to a reset.
        case lingering
    }

    let slot: Int32
    var generation: UInt32 = 0
    var state = State.free

    var plan: Plan?
    var listener = 0
    /// The client socket, owned from accept until `Worker.closeHTTP` unregisters it from the
    /// `FdTable` and drops it; nil while the slot is free.
    var client: Descriptor? = nil
    var transport = Transport.plain
    /// Readiness of `client` as `transport` sees it (`hangup`: the client's FIN or hang-up).
    var clientIO = Readiness()
    /// The client: the accepted peer, or the source a PROXY header carried.
    var clientAddress = SocketAddress()
    /// The client address as the rule matcher wants it (`RequestFacts.sourceFamily` and
    /// `sourceAddress`), computed once per connection; family 0 (not IP) matches no range.
    var sourceFamily: UInt8 = 0
    var sourceAddress: (UInt64, UInt64) = (0, 0)
    /// The client address as text, formatted once per connection for X-Forwarded-For.
    var clientText = HTTPWriter.AddressText()
    var clientClosed = false

    var parser: HTTPRequestParser
    var input = ByteQueue()
    /// Head bytes Sluice writes to the client (rewritten response heads, own responses).
    var toClient = ByteQueue()

    let exchange = HTTPExchange()

    var lastActivity: UInt64 = 0
    var timerAt: UInt64 = 0
    /// While handshaking: when the handshake times out.
    var handshakeDeadline: UInt64 = 0
    /// While reading the PROXY header: when it must be complete.
    var preambleDeadline: UInt64 = 0
    /// Mutual TLS: the `X-Sluice-Client-Cert…` header lines for every request of this
    /// connection (empty without a client certificate). Built once, after the handshake.
    var clientCertHeaders: [UInt8] = []
    /// An HTTP/2 stream served by this session: its pipe to the HTTP/2 connection (the
    /// session's transport is `.stream` of it), nil for a socket session.
    var streamPipe: StreamPipe? = nil
    /// No request has been read on this connection yet (an h2c preface may come).
    var firstRequest = true

    // For the access log: the request's method and path, copied when the head is parsed.
    let logScratch = UnsafeMutableRawPointer.allocate(byteCount: HTTPConnection.logScratchSize, alignment: 8)
    /// Where this connection's access-log lines go (nil: off), fixed when it opened. Borrowed:
    /// the published Plan bundle owns the log files.
    var logFd: Int32? = nil
    static let logScratchSize = 600

    deinit { logScratch.deallocate() }

    init(slot: Int32, limits: HTTPLimits) {
        self.slot = slot
        parser = HTTPRequestParser(limits: limits)
    }

    /// The client socket's number, for a system call: -1 for an HTTP/2 stream session (its
    /// transport ignores the number), else only while the session is open (it has its
    /// socket from accept until `Worker.closeHTTP`).
    @inline(__always)
    var clientFd: Int32 {
        if let raw = client?.raw { return raw }
        if streamPipe != nil { return -1 }
        preconditionFailure("client socket used after close")
    }
}

@available(*, unavailable)
extension HTTPConnection: Sendable {}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

@available(*, unavailable)
extension HTTPExchange: Sendable {}
