import SluiceBalancer
import SluiceCore

/// One direction of a proxied TCP connection: bytes read from the source wait in a pipe
/// (splice mode) or a pool buffer (copy mode) until written to the other socket.
struct Flow: ~Copyable {
    /// Splice mode: the pipe holding `inPipe` bytes; nil while it is empty (back in the pool).
    var pipe: Pipe? = nil
    /// Copy mode: a pool buffer and the unsent range `start..<end` in it.
    var buffer: UnsafeMutableRawPointer? = nil
    var start = 0
    var end = 0
    /// Bytes in the pipe (splice mode).
    var inPipe = 0
    /// A copy read filled a whole buffer: this flow carries bulk data and splices from now on.
    /// Until then it copies: for the few bytes of a short exchange, read + write with the
    /// short-read rule costs fewer system calls than splicing in and out of a pipe (a splice
    /// into a pipe cannot prove the socket drained, so it needs an extra `EAGAIN` call).
    var bulk = false
    /// The source sent FIN.
    var sourceClosed = false
    /// FIN passed on to the destination.
    var shutdownSent = false
    var bytes: UInt64 = 0

    /// Nothing more will move this way.
    var finished: Bool { shutdownSent }

    var pending: Int { inPipe + (end - start) }
}

/// A proxied L4 connection: a client socket, a target socket and a flow each way. Objects
/// live in the worker's slab and are reused; `slot` and `generation` identify one use of
/// the object in timer tokens. Loop-bound.
///
/// Phases: `.preamble` (the listener's `Preamble`, a PROXY header on `accept_proxy_protocol`
/// listeners, is read from the client socket; no target yet) → `.handshaking` (a `tls`
/// listener's TLS handshake with the client) → `.connecting` (target connect in flight,
/// retried on failure; a PROXY header to send goes out first) → `.established` (bytes move
/// through each side's `Transport`) → `.free` (back in the slab). `.queued` (between the
/// preamble or handshake and `.connecting`): waiting in the group's surge queue, nothing read.
///
/// The connection owns its sockets as `Descriptor`s: `client` from accept to close, `server`
/// from `socket()` to close, and each flow's pipe while bytes are in it. A descriptor is
/// unregistered from the worker's `FdTable` before its owner drops it.
final class TCPConnection {
    enum State { case free, handshaking, preamble, connecting, established, queued }

    let slot: Int32
    var generation: UInt32 = 0
    var state = State.free

    var plan: Plan?
    var listener = 0
    var group = 0
    var target = -1
    var tried = TriedTargets()
    var flowHash: UInt64 = 0
    /// Surge queue (SPEC §12, `.queued`): the target whose slot is held before attaching
    /// (-1: none), the queue, when the connection first queued (0: never) and until when it
    /// may wait, and whether it was just handed a slot (its turn).
    var heldTarget = -1
    var surgeQueue: SurgeQueue?
    var surgeSince: UInt64 = 0
    var surgeDeadline: UInt64 = 0
    var surgeTurn = false

    var client: Descriptor? = nil
    var server: Descriptor? = nil
    var clientTransport = Transport.plain
    var serverTransport = Transport.plain
    var clientReady = Readiness()
    var serverReady = Readiness()
    /// What the client sends before anything else (a PROXY header, or nothing).
    var preamble = Preamble.none
    /// The client: the accepted peer, or the source a PROXY header carried.
    var clientAddress = SocketAddress()
    /// The address the client connected to, as a PROXY header carried it; nil: the
    /// listener's (or the socket's local address for a wildcard bind).
    var carriedDestination: SocketAddress? = nil
    /// When the preamble must be complete (while `.preamble` and it reads input).
    var preambleDeadline: UInt64 = 0
    /// Bytes of the PROXY header sent to the target inside `up`'s count (not payload).
    var proxyHeaderBytes = 0

    /// client → target
    var up = Flow()
    /// target → client
    var down = Flow()

    /// A `tls` group: the TLS handshake with the target runs (still `.connecting`).
    var serverHandshaking = false
    /// While `.handshaking`: when the client's handshake times out.
    var handshakeDeadline: UInt64 = 0
    var connectDeadline: UInt64 = 0
    var lastActivity: UInt64 = 0
    var idleTimeout: UInt64 = 0
    /// Deadline of the latest timer-wheel entry scheduled for this use, 0 when none is pending.
    var timerAt: UInt64 = 0
    /// Access log: the listener's descriptor (-1: off), when the connection was accepted and
    /// how it ends (set by the path that closes it; `close` fills in the rest).
    var logFd: Int32 = -1
    var openedAt: UInt64 = 0
    var end = L4End.closed

    init(slot: Int32) { self.slot = slot }

    /// The client socket's number, -1 when closed.
    @inline(__always)
    var clientFd: Int32 { client?.raw ?? -1 }

    /// The target socket's number, -1 when there is none.
    @inline(__always)
    var serverFd: Int32 { server?.raw ?? -1 }

    /// Token for the timer wheel: this slot in this use.
    var timerToken: TimerToken { TimerToken(kind: .tcp, slot: slot, generation: generation) }

    /// When the pending timer should act: the connect deadline while connecting, else the
    /// preamble or handshake deadline before that, else the idle deadline.
    var nextDeadline: UInt64 {
        switch state {
        case .connecting: connectDeadline
        case .queued: surgeDeadline
        case .handshaking: handshakeDeadline
        case .preamble where preamble.readsInput: preambleDeadline
        default: lastActivity &+ idleTimeout
        }
    }

    /// Readies the object for a new client connection, which it now owns; the connection
    /// starts in its preamble phase.
    func reset(client: consuming Descriptor, peer: SocketAddress, plan: Plan, listener: Int, now: UInt64) {
        generation &+= 1
        state = .preamble
        self.plan = plan
        self.listener = listener
        self.client = consume client
        assert(server == nil)
        target = -1
        tried = TriedTargets()
        heldTarget = -1
        surgeQueue = nil
        surgeSince = 0
        surgeTurn = false
        serverHandshaking = false
        clientTransport = .plain
        serverTransport = .plain
        clientReady = Readiness()
        serverReady = Readiness()
        up = Flow()
        down = Flow()
        lastActivity = now
        openedAt = now
        end = .closed
        timerAt = 0
        let l = plan.listeners[listener]
        preamble = l.preamble
        clientAddress = peer
        carriedDestination = nil
        proxyHeaderBytes = 0
        preambleDeadline = now &+ Worker.preambleTimeout(limit: l.idleTimeout)
        idleTimeout = l.idleTimeout
        connectDeadline = now &+ l.connectTimeout
    }
}

@available(*, unavailable)
extension TCPConnection: Sendable {}
