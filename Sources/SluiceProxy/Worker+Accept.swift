import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// A listening socket owned by one worker. The control thread binds it and hands the number
/// over in the published bundle; from then on this worker owns it: the socket closes when the
/// worker lets the object go (listener removed by a new Plan, stop, worker gone). A class so
/// that a worker's listeners can sit in an array (which cannot hold a `~Copyable` element);
/// only created on the cold path.
final class ListenerSocket {
    let socket: Descriptor

    init(taking fd: Int32) { socket = Descriptor(taking: fd) }

    var fd: Int32 { socket.raw }
}

@available(*, unavailable)
extension ListenerSocket: Sendable {}

/// Listeners: registration, accepting (in batches, paused at the connection limit or on a
/// descriptor shortage) and closing them when a stop begins.
extension Worker {
    func registerListener(_ listener: ListenerSocket, index: Int) throws(Errno) {
        let token = fds.register(listener.fd, owner: .listener, index: Int32(index))
        try epoll.add(listener.fd, events: [.readable, .edgeTriggered], data: token)
        listenerPending[index] = true  // connections may have queued before registration
    }

    /// Unregisters a listener that the worker then drops (which closes it).
    func unregisterListener(_ listener: ListenerSocket) {
        epoll.remove(listener.fd)
        fds.unregister(listener.fd)
    }

    func acceptPending() {
        acceptPaused = false
        for i in listenerPending.indices where listenerPending[i] { acceptAll(listener: i) }
    }

    func acceptAll(listener index: Int) {
        guard let fd = listeners[index]?.fd else { return }
        var budget = Worker.acceptBatch
        while budget > 0 {
            if process.activeConnections.load(ordering: .relaxed) >= process.maxConnections
                || httpBuffers.overBudget || buffers.overBudget {
                // At the connection limit or the buffer budget: new clients wait in the
                // kernel's backlog until connections end or buffers come back.
                pauseAccepting(index)
                return
            }
            budget -= 1
            let result: IOResult<Int32>
            do {
                result = try Posix.accept(fd, address: &peer)
            } catch {
                if Worker.isResourceShortage(error) {
                    pauseAccepting(index)
                    return
                }
                continue  // ECONNABORTED and friends: that client is gone
            }
            switch result {
            case .wouldBlock:
                listenerPending[index] = false
                return
            case .processed(let client):
                if plan.listeners[index].isHTTP {
                    openHTTP(client: Descriptor(taking: client), listener: index)
                } else {
                    open(client: Descriptor(taking: client), listener: index)
                }
            }
        }
        listenerPending[index] = true
    }

    private func pauseAccepting(_ index: Int) {
        listenerPending[index] = true
        acceptPaused = true
    }

    static func isResourceShortage(_ e: Errno) -> Bool {
        e == Errno(EMFILE) || e == Errno(ENFILE) || e == Errno(ENOBUFS) || e == Errno(ENOMEM)
    }

    /// Stops accepting: closes this worker's listeners and starts the grace period.
    func beginStop() {
        for i in listeners.indices {
            if let l = listeners[i] { unregisterListener(l) }
            listeners[i] = nil  // closes
            listenerPending[i] = false
        }
        stopUDP()
        stopDeadline = now &+ process.shutdownGrace
        goawayAll()
    }
}
