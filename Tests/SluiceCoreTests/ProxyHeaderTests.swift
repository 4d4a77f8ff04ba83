import SluiceCore
import Testing

/// Helpers: encode into an array, parse an array.
private func encode(_ v: ProxyProtocolVersion, datagram: Bool = false, _ s: SocketAddress?, _ d: SocketAddress?) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: ProxyHeaderEncoder.maxLength)
    let n = out.withUnsafeMutableBytes { ProxyHeaderEncoder.encode(v, datagram: datagram, source: s, destination: d, into: $0) }
    return Array(out[..<n])
}

private func parse(_ bytes: [UInt8]) -> ProxyHeaderParser.Result {
    bytes.withUnsafeBytes { ProxyHeaderParser.parse($0) }
}

private func parse(_ text: String) -> ProxyHeaderParser.Result { parse(Array(text.utf8)) }

private func addr(_ host: String, _ port: UInt16) -> SocketAddress { SocketAddress(host: host, port: port)! }

private let sig: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// The encoder writes exactly the bytes of HAProxy's proxy-protocol.txt.
@Suite struct ProxyHeaderEncoderTests {
    @Test func v1TCP4() {
        let h = encode(.v1, addr("192.0.2.10", 56324), addr("198.51.100.1", 443))
        #expect(String(decoding: h, as: UTF8.self) == "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n")
        let z = encode(.v1, addr("0.0.0.0", 0), addr("255.255.255.255", 65535))
        #expect(String(decoding: z, as: UTF8.self) == "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n")
    }

    @Test func v1TCP6() {
        let h = encode(.v1, addr("2001:db8::1", 1234), addr("2001:db8:0:0:1::ff", 80))
        #expect(String(decoding: h, as: UTF8.self) == "PROXY TCP6 2001:db8::1 2001:db8::1:0:0:ff 1234 80\r\n")
        // The longest line: two full-length addresses and five-digit ports fits maxLength.
        let long = encode(.v1, addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
                          addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65534))
        #expect(long.count == 104)
        #expect(long.count <= ProxyHeaderEncoder.maxLength)
    }

    @Test func v1Unknown() {
        #expect(String(decoding: encode(.v1, nil, nil), as: UTF8.self) == "PROXY UNKNOWN\r\n")
        #expect(String(decoding: encode(.v1, addr("192.0.2.1", 1), nil), as: UTF8.self) == "PROXY UNKNOWN\r\n")
        // v1 has no datagram form.
        let dg = encode(.v1, datagram: true, addr("192.0.2.1", 1), addr("192.0.2.2", 2))
        #expect(String(decoding: dg, as: UTF8.self) == "PROXY UNKNOWN\r\n")
    }

    @Test func v1MixedFamiliesAreIPv4MappedTCP6() {
        let h = encode(.v1, addr("192.0.2.10", 5000), addr("2001:db8::2", 80))
        #expect(String(decoding: h, as: UTF8.self) == "PROXY TCP6 ::ffff:192.0.2.10 2001:db8::2 5000 80\r\n")
    }

    @Test func v2TCP4() {
        let h = encode(.v2, addr("192.0.2.10", 0xDC04), addr("198.51.100.1", 443))
        #expect(h == sig + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 10, 198, 51, 100, 1, 0xDC, 0x04, 0x01, 0xBB])
    }

    @Test func v2UDP4() {
        let h = encode(.v2, datagram: true, addr("10.0.0.1", 53), addr("10.0.0.2", 5353))
        #expect(h == sig + [0x21, 0x12, 0x00, 0x0C, 10, 0, 0, 1, 10, 0, 0, 2, 0x00, 0x35, 0x14, 0xE9])
    }

    @Test func v2TCP6AndUDP6() {
        let s = addr("2001:db8::1", 1)
        let d = addr("fe80::ff:2", 0xFFFF)
        let srcBytes: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        let dstBytes: [UInt8] = [0xFE, 0x80] + [UInt8](repeating: 0, count: 11) + [0xFF, 0, 2]
        let tail: [UInt8] = srcBytes + dstBytes + [0, 1, 0xFF, 0xFF]
        #expect(encode(.v2, s, d) == sig + [0x21, 0x21, 0x00, 0x24] + tail)
        #expect(encode(.v2, datagram: true, s, d) == sig + [0x21, 0x22, 0x00, 0x24] + tail)
        #expect(encode(.v2, s, d).count == 52)
    }

    @Test func v2Local() {
        #expect(encode(.v2, nil, nil) == sig + [0x20, 0x00, 0x00, 0x00])
        #expect(encode(.v2, nil, addr("192.0.2.1", 1)) == sig + [0x20, 0x00, 0x00, 0x00])
        var out = [UInt8](repeating: 0, count: 16)
        #expect(out.withUnsafeMutableBytes { ProxyHeaderEncoder.encodeLocal(.v2, into: $0) } == 16)
        #expect(out == sig + [0x20, 0x00, 0x00, 0x00])
    }

    @Test func v2MixedFamiliesAreIPv4Mapped() {
        let h = encode(.v2, addr("2001:db8::1", 7), addr("192.0.2.1", 8))
        let src: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        let dst: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 1]
        #expect(h == sig + [0x21, 0x21, 0x00, 0x24] + src + dst + [0, 7, 0, 8])
    }

    @Test func shortBufferWritesNothing() {
        for size in [0, 15, 27] {
            var out = [UInt8](repeating: 0, count: size)
            let n = out.withUnsafeMutableBytes {
                ProxyHeaderEncoder.encode(.v2, datagram: false, source: addr("192.0.2.1", 1),
                                          destination: addr("192.0.2.2", 2), into: $0)
            }
            #expect(n == 0)
        }
        var out = [UInt8](repeating: 0, count: 20)
        let n = out.withUnsafeMutableBytes {
            ProxyHeaderEncoder.encode(.v1, datagram: false, source: addr("192.0.2.1", 1),
                                      destination: addr("192.0.2.2", 2), into: $0)
        }
        #expect(n == 0)
    }
}

/// The parser: round trips, prefixes, and hostile inputs.
@Suite struct ProxyHeaderParserTests {
    private func carried(_ r: ProxyHeaderParser.Result) -> ProxyHeaderParser.Carried? {
        if case .done(_, let c) = r { return c }
        return nil
    }

    @Test func roundTrips() {
        let cases: [(SocketAddress, SocketAddress)] = [
            (addr("192.0.2.10", 56324), addr("198.51.100.1", 443)),
            (addr("2001:db8::1", 1), addr("2001:db8::2", 65535)),
            (addr("0.0.0.0", 0), addr("255.255.255.255", 65535)),
        ]
        for (s, d) in cases {
            for v in [ProxyProtocolVersion.v1, .v2] {
                let h = encode(v, s, d)
                let expected = ProxyHeaderParser.Carried(source: s, destination: d, datagram: false)
                #expect(parse(h) == .done(consumed: h.count, carried: expected))
                // Payload after the header stays unconsumed.
                #expect(parse(h + Array("GET / HTTP/1.1\r\n".utf8)) == .done(consumed: h.count, carried: expected))
            }
            let u = encode(.v2, datagram: true, s, d)
            #expect(parse(u) == .done(consumed: u.count, carried: .init(source: s, destination: d, datagram: true)))
        }
    }

    @Test func mixedFamiliesParseAsMappedIPv6() {
        let h = encode(.v2, addr("192.0.2.1", 1), addr("2001:db8::2", 2))
        let c = carried(parse(h))
        #expect(c?.source.host == "::ffff:192.0.2.1")
        #expect(c?.destination.host == "2001:db8::2")
    }

    @Test func localAndUnknownCarryNothing() {
        #expect(parse("PROXY UNKNOWN\r\n") == .done(consumed: 15, carried: nil))
        #expect(parse("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX") == .done(consumed: 35, carried: nil))
        #expect(parse(sig + [0x20, 0x00, 0x00, 0x00]) == .done(consumed: 16, carried: nil))
        // LOCAL ignores its block, whatever the family.
        #expect(parse(sig + [0x20, 0x11, 0x00, 0x03, 1, 2, 3]) == .done(consumed: 19, carried: nil))
        // PROXY with UNSPEC or AF_UNIX: the real peer stays.
        #expect(parse(sig + [0x21, 0x00, 0x00, 0x00]) == .done(consumed: 16, carried: nil))
        let unix = sig + [0x21, 0x31, 0x00, 0xD8] + [UInt8](repeating: 0x41, count: 216)
        #expect(parse(unix) == .done(consumed: 232, carried: nil))
    }

    @Test func everyPrefixNeedsMore() {
        let headers: [[UInt8]] = [
            encode(.v1, addr("192.0.2.10", 56324), addr("198.51.100.1", 443)),
            encode(.v1, addr("2001:db8::1", 1), addr("2001:db8::2", 2)),
            encode(.v1, nil, nil),
            encode(.v2, addr("192.0.2.10", 56324), addr("198.51.100.1", 443)),
            encode(.v2, datagram: true, addr("2001:db8::1", 1), addr("2001:db8::2", 2)),
            encode(.v2, nil, nil),
        ]
        for h in headers {
            for n in 0..<h.count { #expect(parse(Array(h[..<n])) == .needMore, "prefix \(n) of \(h)") }
            #expect(parse(h) != .needMore)
        }
    }

    @Test func tlvsAreSkipped() {
        // AWS-like: address block then a PP2_TYPE_AWS TLV (0xEA) and a NOOP (0x04).
        let block: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00, 0x50]
        let tlvs: [UInt8] = [0xEA, 0x00, 0x05, 0x01, 0x76, 0x70, 0x63, 0x65, 0x04, 0x00, 0x02, 0x00, 0x00]
        let len = block.count + tlvs.count
        let h = sig + [0x21, 0x11, 0x00, UInt8(len)] + block + tlvs
        let r = parse(h + [0x16, 0x03, 0x01])
        #expect(r == .done(consumed: 16 + len, carried: .init(
            source: addr("10.0.0.1", 12345), destination: addr("10.0.0.2", 80), datagram: false)))
        // The largest accepted block.
        let max = ProxyHeaderParser.maxV2PayloadLength
        let big = sig + [0x21, 0x11, UInt8(max >> 8), UInt8(max & 0xFF)] + block
            + [UInt8](repeating: 0, count: max - block.count)
        #expect(parse(big) == .done(consumed: ProxyHeaderParser.maxLength, carried: .init(
            source: addr("10.0.0.1", 12345), destination: addr("10.0.0.2", 80), datagram: false)))
        #expect(big.count == ProxyHeaderParser.maxLength)
    }

    @Test func wrongStartRejectsAtOnce() {
        #expect(parse("G") == .reject(.notProxyProtocol))
        #expect(parse("GET / HTTP/1.1\r\n") == .reject(.notProxyProtocol))
        #expect(parse([0x16, 0x03, 0x01]) == .reject(.notProxyProtocol))  // a TLS ClientHello
        #expect(parse("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n") == .reject(.notProxyProtocol))
        #expect(parse("PROXX") == .reject(.notProxyProtocol))
        #expect(parse("PROXY") == .needMore)
        #expect(parse([0x0D, 0x0A, 0x0D, 0x0A, 0x01]) == .reject(.notProxyProtocol))
        #expect(parse([0x0D, 0x0A, 0x0D]) == .needMore)
    }

    @Test func v1Hostile() {
        #expect(parse("PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n") == .reject(.v1BadFields))  // double space
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n") == .reject(.v1BadFields))  // trailing space
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n") == .reject(.v1BadFields))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n") == .reject(.v1BadFields))
        #expect(parse("PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n") == .reject(.v1BadFields))
        #expect(parse("PROXY \r\n") == .reject(.v1BadFields))
        #expect(parse("PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n") == .reject(.v1BadProtocol))
        #expect(parse("PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n") == .reject(.v1BadProtocol))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n") == .reject(.v1BadPort))  // leading zero
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n") == .reject(.v1BadPort))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1 +2\r\n") == .reject(.v1BadPort))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1 123456\r\n") == .reject(.v1BadPort))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 0 65535\r\n") != .reject(.v1BadPort))
        #expect(parse("PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n") == .reject(.v1BadAddress))
        #expect(parse("PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n") == .reject(.v1BadAddress))
        #expect(parse("PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n") == .reject(.v1BadAddress))
        #expect(parse("PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n") == .reject(.v1BadAddress))
        #expect(parse("PROXY TCP4 192.0.2.1\0 192.0.2.2 1 2\r\n") == .reject(.v1BadAddress))
        #expect(parse("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n") == .reject(.v1BadLineEnd))
        #expect(parse("PROXY TCP4 192.0.2.1\r192.0.2.2 1 2\r\n") == .reject(.v1BadLineEnd))
        // No CRLF within 107 bytes.
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 93)
        #expect(long.utf8.count == 107)
        #expect(parse(String(long.dropLast())) == .needMore)
        #expect(parse(long) == .reject(.v1Oversized))
        // CRLF ending exactly at byte 107 is fine.
        let edge = "PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"
        #expect(parse(edge) == .done(consumed: 107, carried: nil))
    }

    @Test func v2Hostile() {
        let block: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2]
        #expect(parse(sig + [0x11]) == .reject(.v2BadVersion))
        #expect(parse(sig + [0x31, 0x11, 0x00, 0x0C] + block) == .reject(.v2BadVersion))
        #expect(parse(sig + [0x22]) == .reject(.v2BadCommand))
        #expect(parse(sig + [0x2F, 0x11, 0x00, 0x0C] + block) == .reject(.v2BadCommand))
        #expect(parse(sig + [0x21, 0x13, 0x00, 0x0C] + block) == .reject(.v2BadFamily))
        #expect(parse(sig + [0x21, 0x41, 0x00, 0x0C] + block) == .reject(.v2BadFamily))
        #expect(parse(sig + [0x21, 0x11, 0xFF, 0xFF]) == .reject(.v2Oversized))
        let over = ProxyHeaderParser.maxV2PayloadLength + 1
        #expect(parse(sig + [0x21, 0x11, UInt8(over >> 8), UInt8(over & 0xFF)]) == .reject(.v2Oversized))
        #expect(parse(sig + [0x21, 0x11, 0x00, 0x0B] + block) == .reject(.v2ShortAddresses))
        #expect(parse(sig + [0x21, 0x21, 0x00, 0x0C] + block) == .reject(.v2ShortAddresses))
        #expect(parse(sig + [0x21, 0x31, 0x00, 0x24]) == .reject(.v2ShortAddresses))
        // Wrong signature byte in the middle.
        var bad = sig
        bad[6] = 0x0B
        #expect(parse(bad + [0x21, 0x11, 0x00, 0x0C] + block) == .reject(.notProxyProtocol))
        // A truncated valid header only waits.
        #expect(parse(sig + [0x21, 0x11, 0x00, 0x0C] + block.dropLast()) == .needMore)
    }

    @Test func rejectionNames() {
        #expect(ProxyHeaderRejection.notProxyProtocol.rawValue == "not_proxy_protocol")
        #expect(ProxyHeaderRejection.v2Oversized.rawValue == "v2_oversized")
    }
}
