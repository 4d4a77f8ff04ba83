import SluiceCore

/// HTTP/2 client connections (placeholder until the HTTP/2 session lands).
extension Worker {
    func upgradeToHTTP2(_ c: HTTPConnection, preface: Bool) {
        closeHTTP(c)
    }

    func streamSessionClosed(_ c: HTTPConnection, _ pipe: StreamPipe) {}

    func h2TimerFired(slot: Int32, generation: UInt32) {}
    func h2UpstreamTimerFired(slot: Int32, generation: UInt32) {}
}

extension Worker {
    func h2ClientEvent(slot: Int32, _ events: EpollEvents) {}
    func h2UpstreamEvent(slot: Int32, _ events: EpollEvents) {}
}
