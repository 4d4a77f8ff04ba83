import Testing
import SluiceCore

@Suite struct TimerTokenTests {
    @Test(arguments: [TimerToken.Kind.tcp, .http])
    func roundTripsEveryField(kind: TimerToken.Kind) {
        for (slot, generation) in [(Int32(0), UInt32(0)), (1, 1), (12_345, 0xDEAD_BEEF),
                                   (Int32(TimerToken.slotMask), UInt32.max)] {
            let t = TimerToken(kind: kind, slot: slot, generation: generation)
            #expect(TimerToken(raw: t.raw) == t)
        }
    }

    @Test func layoutIsGenerationKindSlot() {
        let t = TimerToken(kind: .http, slot: 5, generation: 7)
        #expect(t.raw == 7 << 32 | 1 << 28 | 5)
        #expect(TimerToken(kind: .tcp, slot: 5, generation: 7).raw == 7 << 32 | 5)
    }

    @Test func kindsDoNotCollide() {
        let tcp = TimerToken(kind: .tcp, slot: 9, generation: 3)
        let http = TimerToken(kind: .http, slot: 9, generation: 3)
        #expect(tcp.raw != http.raw)
        #expect(TimerToken(raw: http.raw)?.kind == .http)
    }

    @Test func unknownKindIsRejected() {
        #expect(TimerToken(raw: 0xF << 28) == nil)
    }
}

@Suite struct ReadinessTests {
    @Test func eventsSetFlagsThatStayUntilCleared() {
        var r = Readiness()
        r.note([.readable])
        #expect(r.readable && !r.writable && !r.hangup)
        r.note([.writable])
        #expect(r.readable && r.writable, "an event adds readiness, it never clears it")
        r.readable = false
        r.note([.readHangup])
        #expect(r.readable && r.hangup, "a read hang-up is read readiness (to see the EOF)")
    }

    @Test func hangupMakesBothDirectionsReady() {
        var r = Readiness()
        r.note([.hangup])
        #expect(r.readable && r.writable && r.hangup)
    }
}

@Suite struct PreambleTests {
    @Test func noPreambleIsDoneWithoutReading() {
        let p = Preamble.none
        #expect(!p.readsInput)
        #expect(p.step(input: UnsafeRawBufferPointer(start: nil, count: 0)) == .done(consumed: 0, carried: nil))
        let bytes: [UInt8] = Array("GET / HTTP/1.1\r\n".utf8)
        bytes.withUnsafeBytes { #expect(p.step(input: $0) == .done(consumed: 0, carried: nil), "payload is never eaten") }
        #expect(Preamble(acceptProxy: false) == .none)
    }

    @Test func proxyHeaderPreambleReadsTheHeaderOnly() {
        let p = Preamble(acceptProxy: true)
        #expect(p == .proxyHeader && p.readsInput && p.maxLength == ProxyHeaderParser.maxLength)
        #expect(p.step(input: UnsafeRawBufferPointer(start: nil, count: 0)) == .needMore)
        let header = "PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n"
        let bytes: [UInt8] = Array((header + "GET / HTTP/1.1\r\n").utf8)
        let carried = ProxyHeaderParser.Carried(source: SocketAddress(host: "203.0.113.7", port: 40000)!,
                                                destination: SocketAddress(host: "192.0.2.1", port: 80)!, datagram: false)
        bytes.withUnsafeBytes { #expect(p.step(input: $0) == .done(consumed: header.utf8.count, carried: carried)) }
        let http: [UInt8] = Array("GET / HTTP/1.1\r\n".utf8)
        http.withUnsafeBytes { #expect(p.step(input: $0) == .reject(.notProxyProtocol)) }
    }
}
