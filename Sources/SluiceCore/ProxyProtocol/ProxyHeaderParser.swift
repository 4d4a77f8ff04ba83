#if canImport(Glibc)
import Glibc
#endif

/// Why a PROXY protocol header was refused (the raw value names it in logs and tests).
public enum ProxyHeaderRejection: String, Sendable, Equatable {
    /// The first bytes begin neither `PROXY ` nor the v2 signature (a client that speaks the
    /// payload protocol directly, such as a plain HTTP request).
    case notProxyProtocol = "not_proxy_protocol"
    /// v1: no CRLF within 107 bytes.
    case v1Oversized = "v1_oversized"
    /// v1: a CR not followed by LF, or an LF not preceded by CR.
    case v1BadLineEnd = "v1_bad_line_end"
    /// v1: the protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    case v1BadProtocol = "v1_bad_protocol"
    /// v1: missing, extra or empty fields (a double space, a trailing space).
    case v1BadFields = "v1_bad_fields"
    /// v1: an address that is not valid for the announced family.
    case v1BadAddress = "v1_bad_address"
    /// v1: a port that is not a decimal 0...65535 without leading zeros.
    case v1BadPort = "v1_bad_port"
    /// v2: the version nibble is not 2.
    case v2BadVersion = "v2_bad_version"
    /// v2: the command nibble is neither LOCAL (0) nor PROXY (1).
    case v2BadCommand = "v2_bad_command"
    /// v2: a family/transport byte the spec does not define.
    case v2BadFamily = "v2_bad_family"
    /// v2: the announced length is larger than `ProxyHeaderParser.maxV2PayloadLength`.
    case v2Oversized = "v2_oversized"
    /// v2: the address block is shorter than the family needs.
    case v2ShortAddresses = "v2_short_addresses"
}

/// Reads a PROXY protocol v1 or v2 header (HAProxy's proxy-protocol.txt) from the first bytes a
/// client sent. Sans-I/O and pure: the caller peeks the socket, parses, and on `.done` consumes
/// exactly `consumed` bytes, leaving the payload in the socket.
///
/// It decides as early as it can: a first byte that cannot begin `PROXY ` nor the v2
/// signature is refused at once, so a client that does not send a header is closed rather
/// than left waiting for the timeout. v1 is strict (single spaces, addresses valid for the
/// family, decimal ports without leading zeros, CRLF within 107 bytes); v2 checks the
/// version, command, family and that the address block is long enough; TLVs are skipped.
public enum ProxyHeaderParser {
    /// The largest v2 address block plus TLVs accepted. Cloud balancers send a few TLVs (AWS
    /// the VPC endpoint id, GCP the PSC connection id, both well under 100 bytes); 2048 leaves
    /// room for a certificate-free SSL TLV and bounds the per-worker peek buffer.
    public static let maxV2PayloadLength = 2048
    /// The longest header accepted: v2's 16 fixed bytes plus `maxV2PayloadLength` (v1's 107
    /// is smaller). A peek buffer of this size always holds a complete header.
    public static let maxLength = 16 + maxV2PayloadLength

    /// The addresses a header carries: the real client (`source`) and the address it
    /// connected to (`destination`), and whether the proxied transport was a datagram one.
    public struct Carried: Sendable, Equatable {
        public var source: SocketAddress
        public var destination: SocketAddress
        public var datagram: Bool

        public init(source: SocketAddress, destination: SocketAddress, datagram: Bool) {
            self.source = source
            self.destination = destination
            self.datagram = datagram
        }

        public static func == (a: Carried, b: Carried) -> Bool {
            a.datagram == b.datagram && sameEndpoint(a.source, b.source) && sameEndpoint(a.destination, b.destination)
        }
    }

    public enum Result: Sendable, Equatable {
        /// Every byte so far can begin a valid header: feed again with more.
        case needMore
        /// A complete header of `consumed` bytes; `carried` is nil for v2 LOCAL, v1 UNKNOWN,
        /// and v2 UNSPEC or AF_UNIX addresses (the connection keeps its real peer).
        case done(consumed: Int, carried: Carried?)
        /// Not a valid header: close the connection.
        case reject(ProxyHeaderRejection)
    }

    /// Parses the bytes received so far, from the first byte of the connection.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
        guard let first = bytes.first else { return .needMore }
        switch first {
        case 0x50: return parseV1(bytes)  // "P"
        case 0x0D: return parseV2(bytes)
        default: return .reject(.notProxyProtocol)
        }
    }

    // MARK: v1

    private static let v1Prefix: StaticString = "PROXY "

    private static func parseV1(_ b: UnsafeRawBufferPointer) -> Result {
        // "PROXY " first, byte by byte so a partial prefix waits and a wrong one fails now.
        var prefixOK = true
        v1Prefix.withUTF8Buffer { p in
            for i in 0..<min(p.count, b.count) where b[i] != p[i] { prefixOK = false }
        }
        guard prefixOK else { return .reject(.notProxyProtocol) }
        // The line ends at the first LF, which must follow a CR; a CR elsewhere is an error.
        let window = min(b.count, ProxyProtocolWire.v1MaxLength)
        var lf = -1
        var i = 0
        while i < window {
            let c = b[i]
            if c == 0x0A { lf = i; break }
            if c == 0x0D, i + 1 < window, b[i + 1] != 0x0A { return .reject(.v1BadLineEnd) }
            i += 1
        }
        guard lf >= 0 else {
            return b.count >= ProxyProtocolWire.v1MaxLength ? .reject(.v1Oversized) : .needMore
        }
        guard lf >= 1, b[lf - 1] == 0x0D else { return .reject(.v1BadLineEnd) }
        // Fields between "PROXY " and CR.
        var f = FieldCursor(b, start: 6, end: lf - 1)
        guard let proto = f.next() else { return .reject(.v1BadFields) }
        let consumed = lf + 1
        if proto.equals("UNKNOWN", in: b) {
            // The rest of an UNKNOWN line is ignored (the spec lets senders put anything there).
            return .done(consumed: consumed, carried: nil)
        }
        let ipv4: Bool
        if proto.equals("TCP4", in: b) { ipv4 = true } else if proto.equals("TCP6", in: b) { ipv4 = false } else {
            return .reject(.v1BadProtocol)
        }
        guard let src = f.next(), let dst = f.next(), let sp = f.next(), let dp = f.next(), f.atEnd,
            !f.malformed
        else { return .reject(.v1BadFields) }
        guard var source = parseAddress(src, ipv4: ipv4, in: b),
            var destination = parseAddress(dst, ipv4: ipv4, in: b)
        else { return .reject(.v1BadAddress) }
        guard let sport = parsePort(sp, in: b), let dport = parsePort(dp, in: b) else { return .reject(.v1BadPort) }
        setPort(&source, sport)
        setPort(&destination, dport)
        return .done(consumed: consumed, carried: Carried(source: source, destination: destination, datagram: false))
    }

    /// A field's byte range in the input.
    private struct Field {
        var start: Int
        var end: Int
        var count: Int { end - start }

        func equals(_ s: StaticString, in b: UnsafeRawBufferPointer) -> Bool {
            s.withUTF8Buffer { p in
                guard p.count == count else { return false }
                for i in 0..<p.count where b[start + i] != p[i] { return false }
                return true
            }
        }
    }

    /// Splits `start..<end` on single spaces; an empty field (double, leading or trailing
    /// space) marks the line malformed.
    private struct FieldCursor {
        let b: UnsafeRawBufferPointer
        var pos: Int
        let end: Int
        var malformed = false
        var atEnd: Bool { pos > end }

        init(_ b: UnsafeRawBufferPointer, start: Int, end: Int) {
            self.b = b
            self.pos = start
            self.end = end
        }

        mutating func next() -> Field? {
            guard pos <= end else { return nil }
            var i = pos
            while i < end, b[i] != 0x20 { i += 1 }
            let field = Field(start: pos, end: i)
            pos = i + 1  // past the space, or past `end` for the last field
            if field.count == 0 { malformed = true; return nil }
            return field
        }
    }

    /// A dotted quad (TCP4) or an IPv6 text (TCP6), as `inet_pton` reads them (which refuses
    /// leading zeros in a quad and an address of the other family).
    private static func parseAddress(_ f: Field, ipv4: Bool, in b: UnsafeRawBufferPointer) -> SocketAddress? {
        // INET6_ADDRSTRLEN is 46 with its NUL: a longer field is no address.
        guard f.count <= (ipv4 ? 15 : 45) else { return nil }
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &text) { buf -> SocketAddress? in
            for i in 0..<f.count {
                // Hex digits, dots and colons only: a NUL would end the text early for inet_pton.
                let c = b[f.start + i]
                switch c {
                case 0x30...0x39, 0x41...0x46, 0x61...0x66, 0x2E, 0x3A: buf[i] = c
                default: return nil
                }
            }
            buf[f.count] = 0
            guard let cstr = buf.baseAddress?.assumingMemoryBound(to: CChar.self) else { return nil }
            if ipv4 {
                var a = in_addr()
                guard inet_pton(AF_INET, cstr, &a) == 1 else { return nil }
                return makeIPv4(a.s_addr.bigEndian, port: 0)
            }
            var a = in6_addr()
            guard inet_pton(AF_INET6, cstr, &a) == 1 else { return nil }
            return withUnsafeBytes(of: a) { raw in
                makeIPv6(high: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian,
                         low: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian, port: 0)
            }
        }
    }

    /// 1 to 5 decimal digits, no leading zero (except `0` itself), at most 65535.
    private static func parsePort(_ f: Field, in b: UnsafeRawBufferPointer) -> UInt16? {
        guard f.count >= 1, f.count <= 5 else { return nil }
        if f.count > 1, b[f.start] == 0x30 { return nil }
        var v: UInt32 = 0
        for i in f.start..<f.end {
            let d = b[i] &- 0x30
            guard d <= 9 else { return nil }
            v = v &* 10 &+ UInt32(truncatingIfNeeded: d)  // at most 99999: no overflow
        }
        return v <= 65535 ? UInt16(truncatingIfNeeded: v) : nil
    }

    // MARK: v2

    private static func parseV2(_ b: UnsafeRawBufferPointer) -> Result {
        let sigLength = ProxyProtocolWire.v2SignatureLength
        for i in 0..<min(sigLength, b.count) where b[i] != ProxyProtocolWire.v2SignatureByte(i) {
            return .reject(.notProxyProtocol)
        }
        // Version and command are judged as soon as their byte is in.
        if b.count > 12 {
            let verCmd = b[12]
            guard verCmd >> 4 == 2 else { return .reject(.v2BadVersion) }
            guard verCmd & 0x0F <= 1 else { return .reject(.v2BadCommand) }
        }
        guard b.count >= ProxyProtocolWire.v2FixedLength else { return .needMore }
        let isProxy = b[12] & 0x0F == 1
        let famByte = b[13]
        let length = Int(truncatingIfNeeded: b[14]) << 8 | Int(truncatingIfNeeded: b[15])
        guard length <= maxV2PayloadLength else { return .reject(.v2Oversized) }
        // LOCAL: the receiver discards the block whatever its family (the spec).
        if isProxy {
            switch famByte {
            case 0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32: break
            default: return .reject(.v2BadFamily)
            }
            let needed = switch famByte >> 4 {
            case 1: 12
            case 2: 36
            case 3: 216
            default: 0
            }
            guard length >= needed else { return .reject(.v2ShortAddresses) }
        }
        let total = ProxyProtocolWire.v2FixedLength + length
        guard b.count >= total else { return .needMore }
        guard isProxy else { return .done(consumed: total, carried: nil) }
        let datagram = famByte & 0x0F == 2
        let base = ProxyProtocolWire.v2FixedLength
        switch famByte >> 4 {
        case 1:
            let s = b.loadUnaligned(fromByteOffset: base, as: UInt32.self)
            let d = b.loadUnaligned(fromByteOffset: base + 4, as: UInt32.self)
            let sp = b.loadUnaligned(fromByteOffset: base + 8, as: UInt16.self)
            let dp = b.loadUnaligned(fromByteOffset: base + 10, as: UInt16.self)
            return .done(consumed: total, carried: Carried(
                source: makeIPv4(s.bigEndian, port: sp.bigEndian),
                destination: makeIPv4(d.bigEndian, port: dp.bigEndian), datagram: datagram))
        case 2:
            func word(_ at: Int) -> UInt64 { b.loadUnaligned(fromByteOffset: base + at, as: UInt64.self).bigEndian }
            let sp = b.loadUnaligned(fromByteOffset: base + 32, as: UInt16.self)
            let dp = b.loadUnaligned(fromByteOffset: base + 34, as: UInt16.self)
            return .done(consumed: total, carried: Carried(
                source: makeIPv6(high: word(0), low: word(8), port: sp.bigEndian),
                destination: makeIPv6(high: word(16), low: word(24), port: dp.bigEndian), datagram: datagram))
        default:
            // UNSPEC or AF_UNIX: nothing an IP connection can use; keep the real peer.
            return .done(consumed: total, carried: nil)
        }
    }

    // MARK: addresses

    private static func makeIPv4(_ address: UInt32, port: UInt16) -> SocketAddress {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = address.bigEndian
        var s = SocketAddress()
        withUnsafeMutableBytes(of: &s.storage) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
        return s
    }

    private static func makeIPv6(high: UInt64, low: UInt64, port: UInt16) -> SocketAddress {
        var a = sockaddr_in6()
        a.sin6_family = sa_family_t(AF_INET6)
        a.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &a.sin6_addr) { raw in
            raw.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        var s = SocketAddress()
        withUnsafeMutableBytes(of: &s.storage) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
        return s
    }

    private static func setPort(_ s: inout SocketAddress, _ port: UInt16) {
        if s.isIPv6 {
            withUnsafeMutableBytes(of: &s.storage) { raw in
                raw.storeBytes(of: port.bigEndian, toByteOffset: MemoryLayout<sockaddr_in6>.offset(of: \.sin6_port) ?? 2,
                               as: UInt16.self)
            }
        } else {
            withUnsafeMutableBytes(of: &s.storage) { raw in
                raw.storeBytes(of: port.bigEndian, toByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_port) ?? 2,
                               as: UInt16.self)
            }
        }
    }

    /// Same family, address and port.
    static func sameEndpoint(_ a: SocketAddress, _ b: SocketAddress) -> Bool {
        guard a.family == b.family, a.port == b.port else { return false }
        if let x = a.ipv4Address, let y = b.ipv4Address { return x == y }
        if let x = a.ipv6Address, let y = b.ipv6Address { return x == y }
        return a.family != AF_INET && a.family != AF_INET6
    }
}
