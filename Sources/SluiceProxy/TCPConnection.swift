import SluiceBalancer
import SluiceCore

/// One direction of a proxied TCP connection: bytes read from `source` wait in a pipe (splice
/// mode) or a pool buffer (copy mode) until written to the other socket.
struct Flow {
    var pipe = Pipe.none
    /// Copy mode: a pool buffer and the unsent range `start..<end` in it.
    var buffer: UnsafeMutableRawPointer? = nil
    var start = 0
    var end = 0
    /// Bytes in the pipe (splice mode).
    var inPipe = 0
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
final class TCPConnection {
    enum State { case free, connecting, established }

    let slot: Int32
    var generation: UInt32 = 0
    var state = State.free

    var plan: Plan?
    var listener = 0
    var group = 0
    var target = -1
    var tried = TriedTargets()
    var flowHash: UInt64 = 0

    var client: Int32 = -1
    var server: Int32 = -1
    var clientReadable = false
    var clientWritable = false
    var serverReadable = false
    var serverWritable = false

    /// client → target
    var up = Flow()
    /// target → client
    var down = Flow()

    var connectDeadline: UInt64 = 0
    var lastActivity: UInt64 = 0
    var idleTimeout: UInt64 = 0
    /// Deadline of the latest timer-wheel entry scheduled for this use, 0 when none is pending.
    var timerAt: UInt64 = 0

    init(slot: Int32) { self.slot = slot }

    /// Token for the timer wheel: this slot in this use.
    var timerToken: UInt64 { UInt64(generation) << 32 | UInt64(UInt32(bitPattern: slot)) }

    /// When the pending timer should act: the connect deadline while connecting, else the
    /// idle deadline.
    var nextDeadline: UInt64 {
        state == .connecting ? connectDeadline : lastActivity &+ idleTimeout
    }

    /// Readies the object for a new client connection.
    func reset(client: Int32, plan: Plan, listener: Int, now: UInt64) {
        generation &+= 1
        state = .connecting
        self.plan = plan
        self.listener = listener
        self.client = client
        server = -1
        target = -1
        tried = TriedTargets()
        clientReadable = false
        clientWritable = false
        serverReadable = false
        serverWritable = false
        up = Flow()
        down = Flow()
        lastActivity = now
        timerAt = 0
        let l = plan.listeners[listener]
        idleTimeout = l.idleTimeout
        connectDeadline = now &+ l.connectTimeout
    }
}

@available(*, unavailable)
extension TCPConnection: Sendable {}
