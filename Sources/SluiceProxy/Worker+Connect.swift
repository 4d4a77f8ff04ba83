import SluiceBalancer
import SluiceCore

/// How `pickTarget` chooses among a group's untried targets. L4 hashes the client address
/// (or rotates); L7 adds the sticky and missing-key hooks.
struct TargetChoice {
    /// Flow or key hash, for hashing algorithms.
    var hash: UInt64
    /// A target to try first while untried (sticky sessions), -1 for none.
    var sticky = -1
    /// A hashing group's key was missing: take turns instead of hashing.
    var roundRobin = false
}

/// Outcome of `Worker.connectUntried`. The socket (when there is one) is registered with the
/// worker's epoll and `FdTable` for the owner the caller named, and now belongs to the caller.
enum TargetConnect: ~Copyable {
    /// Connected at once (loopback can): the socket is writable.
    case connected(target: Int, socket: Descriptor)
    /// The connect is in flight: the socket reports writable (done) or error/hang-up (failed).
    case inProgress(target: Int, socket: Descriptor)
    /// The connect to `target` failed at once (refused, unreachable): its socket is
    /// unregistered and closed, `target` counts as tried. Another attempt may follow.
    case failed(target: Int, Errno)
    /// No untried target is left in the group, or the attempts are used up.
    case exhausted
    /// No socket could be opened or registered for `target` (descriptor or memory shortage).
    case noSocket(target: Int)
}

/// Opening target connections: the connect-and-retry path shared by L4 and L7.
///
/// L4 (`connectNext`) calls `connectUntried` until it returns something other than
/// `.failed`. L7 (`connectUpstream`) uses the two halves: `pickTarget(group:tried:choice:)`
/// (with `TargetChoice.sticky` / `.roundRobin` for its hooks), then its pool look-up for that
/// target, then `startConnect(to:owner:index:)` with owner `.upstream` when nothing was
/// pooled; the fd table, epoll registration and nonblocking connect are the same code for
/// both layers. Balancer accounting (`TargetPicker.opened`, `TargetRuntime.started`,
/// `failed`) stays with the caller, which knows when a target connection counts.
extension Worker {
    /// Picks the next untried target of `group` (of the worker's current `plan`) and adds it
    /// to `tried`. Nil when none is left or the attempts (`maxConnectAttempts`) are used up.
    /// Under `max_per_target` the pick also reserves a slot of the target (the caller holds
    /// it); a full target is passed over for one with room, and nil means all are full.
    @inline(__always)
    func pickTarget(group: Int, tried: inout TriedTargets, choice: TargetChoice) -> Int? {
        guard tried.count < Worker.maxConnectAttempts else { return nil }
        var pick: Int?
        if choice.sticky >= 0 && !tried.contains(choice.sticky) {
            pick = choice.sticky
        } else if choice.roundRobin {
            pick = pickers[group].pickRoundRobin(excluding: tried)
        } else if let r = groupWeights[group].rotation {
            pick = r.next(excluding: tried)
        } else {
            pick = pickers[group].pick(hash: choice.hash, excluding: tried)
        }
        if let t = pick, plan.groups[group].maxPerTarget > 0 { pick = reserveSlot(group: group, from: t, tried: tried) }
        if let t = pick { tried.insert(t) }
        return pick
    }

    /// Result of `startConnect`.
    enum StartedConnect: ~Copyable {
        case connected(Descriptor)
        case inProgress(Descriptor)
        /// The connect failed at once; the socket is already unregistered and closed.
        case failed(Errno)
        /// No socket could be opened or registered.
        case noSocket
    }

    /// Opens a nonblocking TCP socket with `TCP_NODELAY`, registers it edge-triggered for
    /// reading and writing as (`owner`, `index`) and starts connecting it to `address`.
    @inline(__always)
    func startConnect(to address: SocketAddress, owner: FdOwner, index: Int32) -> StartedConnect {
        guard let raw = try? Socket.tcp(for: address) else { return .noSocket }
        let socket = Descriptor(taking: raw)
        Socket.setNoDelay(raw)
        let token = fds.register(raw, owner: owner, index: index)
        do {
            try epoll.add(raw, events: Worker.pollEvents, data: token)
        } catch {
            fds.unregister(raw)
            socket.close()
            return .noSocket
        }
        do {
            switch try Socket.connect(raw, to: address) {
            case .connected: return .connected(socket)
            case .inProgress: return .inProgress(socket)
            }
        } catch {
            fds.unregister(raw)
            socket.close()
            return .failed(error)
        }
    }

    /// Starts a connection to `target` of `group` (a slot handed over from the surge queue)
    /// and adds it to `tried`.
    func connectTarget(group: Int, target t: Int, tried: inout TriedTargets, owner: FdOwner,
                       index: Int32) -> TargetConnect {
        tried.insert(t)
        switch startConnect(to: plan.groups[group].targets[t].address, owner: owner, index: index) {
        case .connected(let socket): return .connected(target: t, socket: socket)
        case .inProgress(let socket): return .inProgress(target: t, socket: socket)
        case .failed(let e): return .failed(target: t, e)
        case .noSocket: return .noSocket(target: t)
        }
    }

    /// Picks an untried target of `group` in the worker's current `plan` and starts a
    /// connection to it (see `TargetConnect`).
    @inline(__always)
    func connectUntried(group: Int, tried: inout TriedTargets, choice: TargetChoice, owner: FdOwner,
                        index: Int32) -> TargetConnect {
        guard let t = pickTarget(group: group, tried: &tried, choice: choice) else { return .exhausted }
        switch startConnect(to: plan.groups[group].targets[t].address, owner: owner, index: index) {
        case .connected(let socket): return .connected(target: t, socket: socket)
        case .inProgress(let socket): return .inProgress(target: t, socket: socket)
        case .failed(let e): return .failed(target: t, e)
        case .noSocket: return .noSocket(target: t)
        }
    }
}

extension TargetConnect {
    /// The target this outcome is about, -1 for `.exhausted`.
    var pickedTarget: Int {
        switch self {
        case .connected(let t, _): return t
        case .inProgress(let t, _): return t
        case .failed(let t, _): return t
        case .noSocket(let t): return t
        case .exhausted: return -1
        }
    }
}
