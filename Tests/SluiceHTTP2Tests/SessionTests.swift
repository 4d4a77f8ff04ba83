import Testing
@testable import SluiceHTTP2

@Suite struct SessionTests {
    @Test func getRoundTrip() throws {
        let p = H2Pair()
        let head = H2RequestHead(method: "GET", authority: "example.com", path: "/index.html?x=1",
                                 headers: [("accept", "*/*"), ("cookie", "a=1")])
        let id = try #require(p.client.submitRequest(head, endStream: true))
        p.shuttle()
        guard case .request(let sid, let h, let end)? = p.serverEvents.first else {
            Issue.record("no request: \(p.serverEvents)")
            return
        }
        #expect(sid == id)
        #expect(end)
        #expect(h.methodString == "GET")
        #expect(h.pathString == "/index.html?x=1")
        #expect(h.authorityString == "example.com")
        #expect(String(decoding: h.scheme, as: UTF8.self) == "http")
        #expect(h.headers.first("accept") == "*/*")
        #expect(h.headers.first("cookie") == "a=1")
        #expect(p.server.respond(stream: sid, status: 200, headers: [("content-type", "text/plain")], endStream: false))
        let body = bytes("hello")
        #expect(body.withUnsafeBytes { p.server.sendData(stream: sid, $0, endStream: true) })
        p.shuttle()
        var status = 0
        var got: [UInt8] = []
        var ended = false
        for e in p.clientEvents {
            switch e {
            case .responseHead(let s, let st, let hs, _):
                #expect(s == id)
                status = st
                #expect(hs.first("content-type") == "text/plain")
            case .data(_, let b): got += b
            case .endStream: ended = true
            default: break
            }
        }
        #expect(status == 200)
        #expect(got == body)
        #expect(ended)
        #expect(p.serverEvents.contains { if case .streamClosed(sid) = $0 { return true }; return false })
        #expect(p.server.openStreams == 0)
        #expect(p.client.activeStreams == 0)
    }

    @Test func postBodyIsFlowControlledByConsume() throws {
        var ss = H2ServerSettings()
        ss.initialWindowSize = 65535
        ss.connectionWindowSize = 65535
        let p = H2Pair(server: ss)
        p.shuttle()
        let id = try #require(p.client.submitRequest(
            H2RequestHead(method: "POST", authority: "a", path: "/up", headers: [("content-length", "200000")]),
            endStream: false))
        let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(body.withUnsafeBytes { p.client.sendData(stream: id, $0, endStream: true) })
        p.shuttle()
        func received() -> [UInt8] {
            var out: [UInt8] = []
            for e in p.serverEvents { if case .data(id, let b) = e { out += b } }
            return out
        }
        // Nothing consumed: the client may send one window and no more.
        #expect(received().count == 65535)
        #expect(p.client.bufferedData(stream: id) > 0)
        #expect(!p.serverEvents.contains { if case .endStream = $0 { return true }; return false })
        var rounds = 0
        var consumed = 65535
        while !p.serverEvents.contains(where: { if case .endStream = $0 { return true }; return false }) && rounds < 100 {
            p.server.consume(stream: id, bytes: received().count - consumed + 65535)
            consumed = received().count + 65535
            p.shuttle()
            rounds += 1
        }
        #expect(received() == body)
        #expect(p.client.bufferedData(stream: id) == 0)
    }

    @Test func concurrencyLimitRefusesThe129thStream() throws {
        let p = H2Pair()
        p.shuttle()
        #expect(p.client.remoteMaxConcurrentStreams == 128)
        var ids: [Int32] = []
        for k in 0..<128 {
            let id = try #require(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/\(k)"), endStream: true))
            ids.append(id)
        }
        #expect(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/x"), endStream: true) == nil)
        p.shuttle()
        let got = p.serverEvents.compactMap(\.requestStream)
        #expect(got.count == 128)
        #expect(p.server.openStreams == 128)
        for s in got { p.server.respond(stream: s, status: 204, headers: [], endStream: true) }
        p.shuttle()
        #expect(p.client.activeStreams == 0)
        #expect(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/x"), endStream: true) != nil)
    }

    @Test func trailersBothWays() throws {
        let p = H2Pair()
        let id = try #require(p.client.submitRequest(
            H2RequestHead(method: "POST", authority: "a", path: "/pkg.Svc/Call",
                          headers: [("content-type", "application/grpc"), ("te", "trailers")]),
            endStream: false))
        #expect([UInt8](repeating: 7, count: 10).withUnsafeBytes { p.client.sendData(stream: id, $0, endStream: false) })
        #expect(p.client.sendTrailers(stream: id, H2Headers([("x-checksum", "abc")])))
        p.shuttle()
        var sawTrailers = false
        var sawEnd = false
        var sid: Int32 = 0
        for e in p.serverEvents {
            switch e {
            case .request(let s, let h, let end):
                sid = s
                #expect(!end)
                #expect(h.headers.first("te") == "trailers")
            case .trailers(_, let t): sawTrailers = t.first("x-checksum") == "abc"
            case .endStream: sawEnd = true
            default: break
            }
        }
        #expect(sawTrailers && sawEnd)
        p.server.respond(stream: sid, status: 200, headers: [("content-type", "application/grpc")], endStream: false)
        #expect([UInt8](repeating: 1, count: 5).withUnsafeBytes { p.server.sendData(stream: sid, $0, endStream: false) })
        #expect(p.server.sendTrailers(stream: sid, H2Headers([("grpc-status", "0"), ("grpc-message", "ok")])))
        p.shuttle()
        var status = 0
        var grpcStatus: String?
        var dataCount = 0
        var ended = false
        for e in p.clientEvents {
            switch e {
            case .responseHead(_, let st, _, let end):
                status = st
                #expect(!end)
            case .data(_, let b): dataCount += b.count
            case .trailers(_, let t): grpcStatus = t.first("grpc-status")
            case .endStream: ended = true
            default: break
            }
        }
        #expect(status == 200 && dataCount == 5 && grpcStatus == "0" && ended)
    }

    @Test func responseBackpressureFollowsTheClientWindow() throws {
        var cs = H2ClientSettings()
        cs.initialWindowSize = 65535
        let p = H2Pair(client: cs)
        let id = try #require(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/big"), endStream: true))
        p.shuttle()
        let sid = try #require(p.serverEvents.compactMap(\.requestStream).first)
        p.server.respond(stream: sid, status: 200, headers: [], endStream: false)
        let body = [UInt8](repeating: 0x42, count: 300_000)
        #expect(body.withUnsafeBytes { p.server.sendData(stream: sid, $0, endStream: true) })
        #expect(p.server.bufferedData(stream: sid) == 300_000)
        p.shuttle()
        // The client window took 65535; the rest waits in the stream's queue.
        #expect(p.server.bufferedData(stream: sid) == 300_000 - 65535)
        var total = 0
        var rounds = 0
        var ended = false
        while !ended && rounds < 100 {
            var got = 0
            for e in p.clientEvents {
                if case .data(id, let b) = e { got += b.count }
                if case .endStream(id) = e { ended = true }
            }
            p.client.consume(stream: id, bytes: got - total)
            total = got
            p.shuttle()
            rounds += 1
        }
        #expect(total == 300_000)
        #expect(p.server.bufferedData(stream: sid) == 0)
    }

    @Test func goawayStopsNewStreamsAndFinishes() throws {
        let p = H2Pair()
        let id = try #require(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/"), endStream: true))
        p.shuttle()
        let sid = try #require(p.serverEvents.compactMap(\.requestStream).first)
        p.server.goaway(code: H2ErrorCode.noError)
        p.shuttle()
        #expect(p.clientEvents.contains { if case .goaway(id, 0) = $0 { return true }; return false })
        #expect(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/"), endStream: true) == nil)
        #expect(!p.server.isFinished)
        p.server.respond(stream: sid, status: 200, headers: [], endStream: true)
        p.shuttle()
        #expect(p.server.isFinished)
    }

    @Test func shutdownNoticeThenFinalGoaway() throws {
        let p = H2Pair()
        let id = try #require(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/"), endStream: true))
        p.shuttle()
        p.server.shutdownNotice()
        p.shuttle()
        #expect(p.clientEvents.contains { if case .goaway(Int32.max, 0) = $0 { return true }; return false })
        p.server.goaway()
        p.shuttle()
        #expect(p.clientEvents.contains { if case .goaway(id, 0) = $0 { return true }; return false })
        let sid = try #require(p.serverEvents.compactMap(\.requestStream).first)
        p.server.respond(stream: sid, status: 200, headers: [], endStream: true)
        p.shuttle()
        #expect(p.server.isFinished)
        #expect(p.clientEvents.contains { if case .responseHead(id, 200, _, true) = $0 { return true }; return false })
    }

    @Test func clientAssumes100StreamsBeforeSettings() {
        let c = H2ClientSession()
        #expect(c.remoteMaxConcurrentStreams == 100)
        var n = 0
        while c.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/"), endStream: true) != nil { n += 1 }
        #expect(n == 100)
    }

    @Test func tooManyHeadersAnswers431AndKeepsTheConnection() throws {
        var ss = H2ServerSettings()
        ss.maxHeaders = 10
        let p = H2Pair(server: ss)
        let many = (0..<20).map { ("x-h\($0)", "v") }
        let id = try #require(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/", headers: many), endStream: true))
        p.shuttle()
        guard case .headersTooLarge(let sid)? = p.serverEvents.first else {
            Issue.record("expected headersTooLarge, got \(p.serverEvents)")
            return
        }
        p.server.respond(stream: sid, status: 431, headers: [("content-type", "text/plain")], endStream: true)
        p.shuttle()
        #expect(p.clientEvents.contains { if case .responseHead(id, 431, _, true) = $0 { return true }; return false })
        let id2 = try #require(p.client.submitRequest(H2RequestHead(method: "GET", authority: "a", path: "/ok"), endStream: true))
        p.shuttle()
        #expect(p.serverEvents.contains { if case .request(_, let h, _) = $0 { return h.pathString == "/ok" }; return false })
        #expect(id2 == id + 2)
        #expect(p.serverResult == .ok)
    }

    @Test func oversizedHeaderListAnswers431() throws {
        var ss = H2ServerSettings()
        ss.maxHeaderListSize = 1024
        let p = H2Pair(server: ss)
        p.shuttle()
        let id = try #require(p.client.submitRequest(
            H2RequestHead(method: "GET", authority: "a", path: "/", headers: [("x-big", String(repeating: "b", count: 1500))]),
            endStream: true))
        p.shuttle()
        #expect(p.serverEvents.contains { if case .headersTooLarge = $0 { return true }; return false })
        #expect(p.serverResult == .ok)
        _ = id
    }
}

@Suite struct SplitInputTests {
    /// The server reads the client's bytes one at a time and the caller drains events after every
    /// read: header blocks and frames span reads, the arena is recycled in the middle of a block.
    @Test func oneByteReads() throws {
        let client = H2ClientSession()
        let server = H2ServerSession()
        let head = H2RequestHead(method: "POST", authority: "example.org", path: "/a/b",
                                 headers: (0..<30).map { ("x-field-\($0)", String(repeating: "v", count: $0)) })
        let id = try #require(client.submitRequest(head, endStream: false))
        #expect(bytes("body bytes").withUnsafeBytes { client.sendData(stream: id, $0, endStream: false) })
        #expect(client.sendTrailers(stream: id, H2Headers([("x-t", "1")])))
        var wire: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { client.produceOutput(into: $0.baseAddress!, capacity: 7) }
            if n == 0 { break }
            wire += buf[0..<n]
        }
        var events: [H2ServerEvent] = []
        for b in wire {
            let r = [b].withUnsafeBytes { server.receive($0, now: 1) }
            #expect(r == .ok)
            while let e = server.nextEvent() { events.append(e) }
        }
        var got: H2RequestHead?
        var body: [UInt8] = []
        var trailer: String?
        var ended = false
        for e in events {
            switch e {
            case .request(_, let h, _): got = h
            case .data(_, let d): body += d
            case .trailers(_, let t): trailer = t.first("x-t")
            case .endStream: ended = true
            default: break
            }
        }
        let h = try #require(got)
        #expect(h.pathString == "/a/b" && h.authorityString == "example.org")
        #expect(h.headers.count == 30)
        for i in 0..<30 { #expect(h.headers.first("x-field-\(i)") == String(repeating: "v", count: i)) }
        #expect(body == bytes("body bytes"))
        #expect(trailer == "1" && ended)
    }
}
