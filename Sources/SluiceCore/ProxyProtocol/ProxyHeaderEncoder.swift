#if canImport(Glibc)
import Glibc
#endif

/// Writes a PROXY protocol header (HAProxy's proxy-protocol.txt) into a caller's buffer: no
/// allocation, so the L4 path can build one per connection and the UDP path one per flow.
///
/// - v1: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or `TCP6`); `PROXY UNKNOWN\r\n` when an
///   address is missing or not IP. v1 has no datagram form: `datagram: true` writes
///   `PROXY UNKNOWN\r\n` (the config refuses v1 on udp listeners, so this does not happen; it
///   is not a trap because a wrong header is better than a crashed worker).
/// - v2: the 12-byte signature, `0x21` (v2, PROXY), the family/transport byte (`0x11` TCP4,
///   `0x12` UDP4, `0x21` TCP6, `0x22` UDP6), the address block length and the block (source
///   and destination addresses, then ports, big-endian); no TLVs. A missing or non-IP address
///   gives LOCAL (`0x20`, family UNSPEC, length 0).
///
/// Mixed families (an IPv4 client on an IPv6 listener or the reverse) are sent as IPv6 with
/// the IPv4 address IPv4-mapped (`::ffff:a.b.c.d`), as HAProxy does, in both versions.
public enum ProxyHeaderEncoder {
    /// The longest header this encoder writes (v1 TCP6 with two full-length addresses and
    /// five-digit ports is 104 bytes; v2 TCP6 is 52), rounded up: a buffer of this size always fits.
    public static let maxLength = 108

    /// Writes the header for one connection or flow into `out` and returns its length in bytes;
    /// 0 only when `out` is shorter than the header.
    public static func encode(
        _ version: ProxyProtocolVersion, datagram: Bool, source: SocketAddress?, destination: SocketAddress?,
        into out: UnsafeMutableRawBufferPointer
    ) -> Int {
        var w = HeaderWriter(out)
        let pair = ProxyAddressPair(source: source, destination: destination)
        switch version {
        case .v1:
            if let p = pair, !datagram { writeV1(p, &w) } else { w.append(ascii: "PROXY UNKNOWN\r\n") }
        case .v2:
            writeV2(pair, datagram: datagram, &w)
        }
        return w.overflowed ? 0 : w.count
    }

    /// The LOCAL header a health check sends (v2) or `PROXY UNKNOWN\r\n` (v1): the target
    /// keeps the real connection's addresses.
    public static func encodeLocal(_ version: ProxyProtocolVersion, into out: UnsafeMutableRawBufferPointer) -> Int {
        encode(version, datagram: false, source: nil, destination: nil, into: out)
    }

    private static func writeV1(_ p: ProxyAddressPair, _ w: inout HeaderWriter) {
        w.append(ascii: p.isIPv4 ? "PROXY TCP4 " : "PROXY TCP6 ")
        w.appendAddressText(p.source, ipv4: p.isIPv4)
        w.append(0x20)
        w.appendAddressText(p.destination, ipv4: p.isIPv4)
        w.append(0x20)
        w.appendDecimal(p.source.port)
        w.append(0x20)
        w.appendDecimal(p.destination.port)
        w.append(0x0D)
        w.append(0x0A)
    }

    private static func writeV2(_ pair: ProxyAddressPair?, datagram: Bool, _ w: inout HeaderWriter) {
        w.append(bytes: ProxyProtocolWire.v2Signature)
        guard let p = pair else {
            w.append(0x20)  // version 2, LOCAL
            w.append(0x00)  // UNSPEC, UNSPEC
            w.append(bigEndian: 0)
            return
        }
        w.append(0x21)  // version 2, PROXY
        let transport: UInt8 = datagram ? 0x02 : 0x01
        w.append((p.isIPv4 ? 0x10 : 0x20) | transport)
        if p.isIPv4 {
            w.append(bigEndian: 12)
            w.append(bigEndian32: UInt32(truncatingIfNeeded: p.source.low))
            w.append(bigEndian32: UInt32(truncatingIfNeeded: p.destination.low))
        } else {
            w.append(bigEndian: 36)
            w.append(bigEndian64: p.source.high)
            w.append(bigEndian64: p.source.low)
            w.append(bigEndian64: p.destination.high)
            w.append(bigEndian64: p.destination.low)
        }
        w.append(bigEndian: p.source.port)
        w.append(bigEndian: p.destination.port)
    }
}

/// Constants of the PROXY protocol wire format shared by the encoder and the parser.
enum ProxyProtocolWire {
    /// v2's 12-byte signature: `\r\n\r\n\0\r\nQUIT\n`.
    static let v2Signature: (UInt64, UInt32) = (0x0D0A_0D0A_000D_0A51, 0x5549_540A)
    static let v2SignatureLength = 12
    /// The fixed part of a v2 header: signature, version/command, family/transport, length.
    static let v2FixedLength = 16
    /// v1's longest line, CRLF included (the spec's 107).
    static let v1MaxLength = 107

    /// Byte `i` (0..<12) of the v2 signature.
    @inline(__always)
    static func v2SignatureByte(_ i: Int) -> UInt8 {
        i < 8 ? UInt8(truncatingIfNeeded: v2Signature.0 >> UInt64(truncatingIfNeeded: (7 - i) * 8))
            : UInt8(truncatingIfNeeded: v2Signature.1 >> UInt32(truncatingIfNeeded: (11 - i) * 8))
    }
}

/// One endpoint as the header carries it: the address in two big-endian-ordered words (IPv4
/// in the low 32 bits of `low`, IPv4-mapped IPv6 when promoted) and the port.
struct ProxyEndpoint {
    var high: UInt64
    var low: UInt64
    var port: UInt16
}

/// Source and destination in one family: both IPv4, or both IPv6 (an IPv4 one mapped).
/// Nil when either is missing or not an IP address.
struct ProxyAddressPair {
    var isIPv4: Bool
    var source: ProxyEndpoint
    var destination: ProxyEndpoint

    init?(source: SocketAddress?, destination: SocketAddress?) {
        guard let s = source, let d = destination, s.isIPv4 || s.isIPv6, d.isIPv4 || d.isIPv6 else { return nil }
        isIPv4 = s.isIPv4 && d.isIPv4
        self.source = Self.endpoint(s, asIPv6: !isIPv4)
        self.destination = Self.endpoint(d, asIPv6: !isIPv4)
    }

    private static func endpoint(_ a: SocketAddress, asIPv6: Bool) -> ProxyEndpoint {
        if let v4 = a.ipv4Address {
            // ::ffff:a.b.c.d when the other side is IPv6.
            return ProxyEndpoint(high: 0, low: (asIPv6 ? 0xFFFF_0000_0000 : 0) | UInt64(truncatingIfNeeded: v4), port: a.port)
        }
        let v6 = a.ipv6Address ?? (0, 0)
        return ProxyEndpoint(high: v6.0, low: v6.1, port: a.port)
    }
}

/// Appends bytes to a fixed buffer; past its end it only records the overflow.
struct HeaderWriter {
    private let out: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private(set) var overflowed = false

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        guard count < out.count else { overflowed = true; return }
        out[count] = byte
        count &+= 1
    }

    mutating func append(ascii s: StaticString) {
        s.withUTF8Buffer { for b in $0 { append(b) } }
    }

    mutating func append(bytes sig: (UInt64, UInt32)) {
        append(bigEndian64: sig.0)
        append(bigEndian32: sig.1)
    }

    mutating func append(bigEndian v: UInt16) {
        append(UInt8(truncatingIfNeeded: v >> 8))
        append(UInt8(truncatingIfNeeded: v))
    }

    mutating func append(bigEndian32 v: UInt32) {
        append(bigEndian: UInt16(truncatingIfNeeded: v >> 16))
        append(bigEndian: UInt16(truncatingIfNeeded: v))
    }

    mutating func append(bigEndian64 v: UInt64) {
        append(bigEndian32: UInt32(truncatingIfNeeded: v >> 32))
        append(bigEndian32: UInt32(truncatingIfNeeded: v))
    }

    /// Decimal without leading zeros (`0` for zero).
    mutating func appendDecimal(_ v: UInt16) {
        var divisor: UInt16 = 10_000
        var started = false
        while divisor > 0 {
            let digit = (v / divisor) % 10
            if digit != 0 || started || divisor == 1 {
                append(0x30 &+ UInt8(truncatingIfNeeded: digit))
                started = true
            }
            divisor /= 10
        }
    }

    /// Dotted quad for IPv4; for IPv6 the text `inet_ntop` gives (RFC 5952 compression,
    /// lowercase, `::ffff:a.b.c.d` for a mapped address), as HAProxy writes it.
    mutating func appendAddressText(_ e: ProxyEndpoint, ipv4: Bool) {
        if ipv4 {
            var shift: UInt64 = 24
            while true {
                appendDecimal(UInt16(truncatingIfNeeded: (e.low >> shift) & 0xFF))
                if shift == 0 { return }
                append(0x2E)
                shift &-= 8
            }
        }
        var addr = in6_addr()
        withUnsafeMutableBytes(of: &addr) { raw in
            raw.storeBytes(of: e.high.bigEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: e.low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        // INET6_ADDRSTRLEN (46) bytes on the stack.
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &text) { buf in
            guard let base = buf.baseAddress else { return }
            let p = base.assumingMemoryBound(to: CChar.self)
            guard inet_ntop(AF_INET6, &addr, p, socklen_t(truncatingIfNeeded: buf.count)) != nil else {
                overflowed = true
                return
            }
            for i in 0..<buf.count {
                let b = buf[i]
                if b == 0 { break }
                append(b)
            }
        }
    }
}
