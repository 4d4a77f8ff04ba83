import SluiceBalancer
import SluiceConfig
import SluiceCore
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// The WebSocket tunnel of an HTTP/1 connection after a 101: bytes both ways, half-closes
/// passed on.
extension Worker {
    /// Bytes both ways after a 101, half-closes passed on; the tunnel ends when both
    /// directions have ended or on an error.
    func tunnel(_ c: HTTPConnection) -> Bool {
        guard let u = c.exchange.upstream else { return false }
        if flush(&c.toClient, to: c.clientFd, transport: c.transport, io: &c.clientIO) == .failed {
            closeTunnel(c)
            return false
        }
        var up = BodyProgress()
        up.framing = .untilClose
        up.done = false
        var down = up
        while true {
            var step = false
            // Tunnel bytes are unframed (`untilClose`): only the transport can fail.
            if forwardBody(&up, from: &c.input, to: u.fd, transport: u.transport, io: &u.io, counted: &c.exchange.bytesFromClient) == .failed
                || forwardBody(&down, from: &c.exchange.fromTarget, to: c.clientFd, transport: c.transport, io: &c.clientIO,
                               counted: &c.exchange.bytesToClient) == .failed {
                closeTunnel(c)
                return false
            }
            if c.input.isEmpty && c.clientIO.readable && !c.clientClosed {
                switch readClient(c) {
                case .data: step = true
                case .wait: break
                case .closed: u.transport.shutdownWrite(u.fd)
                case .failed:
                    closeTunnel(c)
                    return false
                }
            }
            if c.exchange.fromTarget.isEmpty && u.io.readable && !c.exchange.targetFinished {
                if c.exchange.fromTarget.base == nil { c.exchange.fromTarget.base = httpBuffers.acquire() }
                c.exchange.fromTarget.start = 0
                c.exchange.fromTarget.end = 0
                switch u.io.read(u.transport, u.fd, into: c.exchange.fromTarget.base!, count: httpBuffers.bufferSize) {
                case .closed:
                    c.exchange.targetFinished = true
                    c.transport.shutdownWrite(c.clientFd)
                case .moved(let n):
                    c.exchange.fromTarget.end = n
                    c.lastActivity = now
                    step = true
                case .wait:
                    break
                case .failed:
                    closeTunnel(c)
                    return false
                }
            }
            if c.clientClosed && c.exchange.targetFinished && c.input.isEmpty && c.exchange.fromTarget.isEmpty {
                closeTunnel(c)
                return false
            }
            if !step { return false }
        }
    }

    func closeTunnel(_ c: HTTPConnection) {
        perform(c, c.exchange.machine.abort())
    }
}
