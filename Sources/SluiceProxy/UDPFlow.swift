import SluiceCore

/// One UDP flow: a client address on a listener socket, pinned to a target of a group, with
/// a socket connected to that target. Objects live in the worker's slab and are reused;
/// `slot` and `generation` identify one use in timer tokens. Loop-bound.
///
/// A flow always runs on the worker's current Plan: a new Plan rebases every flow at once
/// (listener by socket, group by name, target by address), and a flow whose target is gone or
/// has weight 0 is re-pinned (a new target socket) on its next datagram.
///
/// The flow owns its target socket as a `Descriptor` (`target` socket from connect to close
/// or re-pin); it is unregistered from the worker's `FdTable` before it is dropped.
final class UDPFlow {
    enum State { case free, open }

    let slot: Int32
    var generation: UInt32 = 0
    var state = State.free

    var key = UDPFlowKey(high: 0, low: 0, tag: 0)
    /// Index of the listener in the worker's current Plan, and its UDP socket (replies leave
    /// through it).
    var listener = 0
    var listenerFd: Int32 = -1
    /// The listener's stable counter id (see `StatsIds`).
    var statsId = -1
    var group = 0
    /// Target index in `group`, -1 while the flow has none (its target left the Plan).
    var target = -1
    /// The client, and the address it wrote to (the listener's port): replies leave from it.
    var client = SocketAddress()
    var local = SocketAddress()
    /// Client-address hash with the listener's seed: the `flow_hash` key.
    var flowHash: UInt64 = 0
    var socket: Descriptor? = nil
    /// The next datagram to the target carries a PROXY v2 header (first of the flow, or first
    /// after a re-pin).
    var headerPending = false
    var lastActivity: UInt64 = 0
    var idleTimeout: UInt64 = 0
    /// Deadline of the latest timer-wheel entry scheduled for this use, 0 when none is pending.
    var timerAt: UInt64 = 0
    /// Access log: the listener's descriptor (-1: off), when the flow opened, payload bytes
    /// sent to its targets and received from them.
    var logFd: Int32 = -1
    var openedAt: UInt64 = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0

    init(slot: Int32) { self.slot = slot }

    /// The target socket's number, -1 when there is none.
    @inline(__always)
    var socketFd: Int32 { socket?.raw ?? -1 }

    /// Token for the timer wheel: this slot in this use.
    var timerToken: TimerToken { TimerToken(kind: .udp, slot: slot, generation: generation) }

    /// When the flow expires unless a datagram passes before.
    var deadline: UInt64 { lastActivity &+ idleTimeout }
}

@available(*, unavailable)
extension UDPFlow: Sendable {}

/// A UDP listening socket owned by one worker (see `ListenerSocket`), with this worker's
/// share of the listener's flows.
final class UDPListenerSocket {
    let socket: Descriptor
    /// Bound to a wildcard address: replies name their source address (packet info).
    let wildcard: Bool
    /// The bound address: what a flow's `local` is when the socket is not a wildcard.
    let address: SocketAddress
    /// This worker's flows on the socket, and how many it may hold.
    var flows = 0
    var maxFlows = 1
    /// Datagrams may be waiting: the last read stopped at its budget, not on an empty socket.
    var pending = false

    init(taking fd: Int32, address: SocketAddress) {
        socket = Descriptor(taking: fd)
        self.address = address
        wildcard = address.isUnspecified
    }

    var fd: Int32 { socket.raw }
}

@available(*, unavailable)
extension UDPListenerSocket: Sendable {}
