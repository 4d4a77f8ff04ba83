import Testing
@testable import SluiceHTTP2

@Suite struct HostileFrameTests {
    @Test func rapidResetClosesWithoutDeliveringRequests() {
        let server = H2ServerSession()
        var input = Frame.start
        for k in 0..<2000 {
            let id = UInt32(2 * k + 1)
            input += Frame.headers(id) + Frame.rst(id)
        }
        let r = feed(server, input)
        #expect(r.close == .rapidReset)
        #expect(r.calls <= 3)
        let requests = r.events.compactMap(\.requestStream)
        #expect(requests.isEmpty, "delivered \(requests.count) requests")
        #expect(hasGoaway(r.output, code: H2ErrorCode.enhanceYourCalm))
        #expect(server.isFinished && !server.wantsWrite)
        // Later reads are refused without work.
        let again = [UInt8](repeating: 0, count: 9).withUnsafeBytes { server.receive($0) }
        #expect(again == .close(.rapidReset))
    }

    @Test func resetsBelowTheBoundKeepTheConnection() {
        let server = H2ServerSession()
        var input = Frame.start
        for k in 0..<50 {
            let id = UInt32(2 * k + 1)
            input += Frame.headers(id) + Frame.rst(id)
        }
        input += Frame.headers(101)
        let r = feed(server, input)
        #expect(r.close == nil)
        // Only the request that was not reset is delivered.
        #expect(r.events.compactMap(\.requestStream) == [101])
    }

    @Test func requestOpenedInAnEarlierReadThenResetIsReported() {
        let server = H2ServerSession()
        let first = feed(server, Frame.start + Frame.headers(1, endStream: false))
        #expect(first.events.compactMap(\.requestStream) == [1])
        let second = feed(server, Frame.rst(1))
        #expect(second.events.contains { if case .reset(1, 8) = $0 { return true }; return false })
        #expect(second.events.contains { if case .streamClosed(1) = $0 { return true }; return false })
    }

    @Test func settingsFlood() {
        let server = H2ServerSession()
        var input = Frame.start
        for _ in 0..<200 { input += Frame.make(type: 4, flags: 0, stream: 0, payload: []) }
        let r = feed(server, input)
        #expect(r.close == .settingsFlood)
        #expect(hasGoaway(r.output, code: H2ErrorCode.enhanceYourCalm))
    }

    @Test func settingsSlowlyAreFine() {
        let server = H2ServerSession()
        var input = Frame.start
        for _ in 0..<40 { input += Frame.make(type: 4, flags: 0, stream: 0, payload: []) }
        #expect(feed(server, input).close == nil)
    }

    @Test func emptyDataFlood() {
        let server = H2ServerSession()
        var input = Frame.start + Frame.headers(1, endStream: false)
        for _ in 0..<500 { input += Frame.make(type: 0, flags: 0, stream: 1, payload: []) }
        let r = feed(server, input)
        #expect(r.close == .emptyFrames)
    }

    @Test func pingFlood() {
        let server = H2ServerSession()
        var input = Frame.start
        for _ in 0..<500 { input += Frame.make(type: 6, flags: 0, stream: 0, payload: [UInt8](repeating: 1, count: 8)) }
        #expect(feed(server, input).close == .pingFlood)
    }

    @Test func continuationFlood() {
        let server = H2ServerSession()
        var input = Frame.start + Frame.headers(1, endStream: true, endHeaders: false)
        for k in 0..<1000 {
            input += Frame.make(type: 9, flags: 0, stream: 1, payload: Frame.literal("x\(k % 10)", "y"))
        }
        let r = feed(server, input)
        #expect(r.close == .continuationFlood)
        #expect(r.events.compactMap(\.requestStream).isEmpty)
        #expect(hasGoaway(r.output, code: H2ErrorCode.enhanceYourCalm))
    }

    @Test func headerBlockBeyondTwiceTheLimitAcrossContinuations() {
        var settings = H2ServerSettings()
        settings.maxHeaderListSize = 4096
        let server = H2ServerSession(settings: settings)
        let piece = Frame.literal("x-big", String(repeating: "a", count: 3000))
        var input = Frame.start + Frame.headers(1, endStream: true, endHeaders: false)
        for _ in 0..<4 { input += Frame.make(type: 9, flags: 0, stream: 1, payload: piece) }
        input += Frame.make(type: 9, flags: 0x4, stream: 1, payload: piece)
        let r = feed(server, input)
        #expect(r.close == .headerListTooLarge)
        #expect(r.events.compactMap(\.requestStream).isEmpty)
    }

    @Test func garbagePrefaceCloses() {
        let server = H2ServerSession()
        let r = feed(server, bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(r.close == .badPreface)
        #expect(r.events.isEmpty)
    }

    @Test func frameOnStreamZeroIsAProtocolError() {
        let server = H2ServerSession()
        let r = feed(server, Frame.start + Frame.make(type: 0, flags: 1, stream: 0, payload: [1, 2, 3]))
        #expect(r.close == .protocolError)
        #expect(hasGoaway(r.output, code: H2ErrorCode.protocolError))
    }

    @Test func malformedRequestResetsOnlyItsStream() {
        let server = H2ServerSession()
        // Upper-case header name: a stream error (RFC 9113 §8.2.1), not a connection error.
        let bad = Frame.getBlock + Frame.literal("X-Upper", "1")
        let r = feed(server, Frame.start + Frame.headers(1, block: bad) + Frame.headers(3))
        #expect(r.close == nil)
        #expect(r.events.compactMap(\.requestStream) == [3])
        let conn = Frame.getBlock + Frame.literal("connection", "close")
        let r2 = feed(server, Frame.headers(5, block: conn) + Frame.headers(7))
        #expect(r2.close == nil)
        #expect(r2.events.compactMap(\.requestStream) == [7])
    }

    @Test func randomBytesNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let server = H2ServerSession()
            var input = Frame.start
            for _ in 0..<Int.random(in: 1...400, using: &rng) { input.append(UInt8.random(in: 0...255, using: &rng)) }
            _ = feed(server, input, chunk: Int.random(in: 1...64, using: &rng))
        }
    }

    /// "MadeYouReset": malformed requests make the server reset streams itself; they count
    /// towards the reset bound like RST_STREAM from the client.
    @Test func provokedResetsCountAsRapidReset() {
        let server = H2ServerSession()
        let bad = Frame.getBlock + Frame.literal("X-Upper", "1")
        var input = Frame.start
        for k in 0..<1000 { input += Frame.headers(UInt32(2 * k + 1), block: bad) }
        let r = feed(server, input)
        #expect(r.close == .rapidReset)
        #expect(r.events.compactMap(\.requestStream).isEmpty)
    }
}
