// libFuzzer entry point over the PROXY protocol codec (ProxyHeaderParser, ProxyHeaderEncoder).
// Compiled together with Sources/SluiceCore/ProxyProtocol/*.swift and SocketAddress.swift into
// one module by `make fuzz` (swiftc -sanitize=fuzzer,address).
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * parse never crashes; `.done` consumes at least one byte, no more than it was given and no
//   more than `maxLength`;
// * the parser is prefix-monotone: every prefix of the input answers `.needMore` until the
//   first one that decides, and every longer prefix gives that same decision (so the
//   connection may parse again after each read, and waiting never changes a verdict);
// * a header it accepts with addresses, encoded again (v2, and v1 for a stream), parses back
//   to the same addresses;
// * headers the encoder writes from addresses taken from the input (IPv4, IPv6, mixed,
//   missing; stream and datagram) fit `ProxyHeaderEncoder.maxLength` and parse back to
//   what was encoded (IPv4-mapped when mixed, nothing for LOCAL/UNKNOWN).

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    checkParse(input)
    checkEncode(input)
    return 0
}

private func checkParse(_ input: UnsafeRawBufferPointer) {
    let whole = ProxyHeaderParser.parse(input)
    if case .done(let consumed, _) = whole {
        precondition(consumed >= 1 && consumed <= input.count && consumed <= ProxyHeaderParser.maxLength)
    }
    var decided: ProxyHeaderParser.Result? = nil
    for k in 0...input.count {
        let r = ProxyHeaderParser.parse(UnsafeRawBufferPointer(rebasing: input[..<k]))
        if let d = decided {
            precondition(r == d, "a longer prefix changed the verdict")
        } else if r != .needMore {
            decided = r
            if case .done(let consumed, _) = r { precondition(consumed == k, "decided before the header ended") }
        }
    }
    precondition((decided ?? .needMore) == whole)

    if case .done(_, let carried?) = whole {
        roundTrip(.v2, datagram: carried.datagram, carried.source, carried.destination)
        if !carried.datagram { roundTrip(.v1, datagram: false, carried.source, carried.destination) }
    }
}

/// Addresses from the input's first bytes: byte 0 picks the families and options.
private func checkEncode(_ input: UnsafeRawBufferPointer) {
    var raw = [UInt8](repeating: 0, count: 37)
    for i in 0..<min(raw.count, input.count) { raw[i] = input[i] }
    let mode = raw[0]
    func endpoint(_ at: Int, ipv6: Bool) -> SocketAddress {
        let port = UInt16(raw[at]) << 8 | UInt16(raw[at + 1])
        var s = SocketAddress()
        withUnsafeMutableBytes(of: &s.storage) { dst in
            if ipv6 {
                var a = sockaddr_in6()
                a.sin6_family = sa_family_t(AF_INET6)
                a.sin6_port = port.bigEndian
                withUnsafeMutableBytes(of: &a.sin6_addr) { for i in 0..<16 { $0[i] = raw[at + 2 + i] } }
                withUnsafeBytes(of: a) { dst.copyMemory(from: $0) }
            } else {
                var a = sockaddr_in()
                a.sin_family = sa_family_t(AF_INET)
                a.sin_port = port.bigEndian
                withUnsafeMutableBytes(of: &a.sin_addr) { for i in 0..<4 { $0[i] = raw[at + 2 + i] } }
                withUnsafeBytes(of: a) { dst.copyMemory(from: $0) }
            }
        }
        return s
    }
    let s = endpoint(1, ipv6: mode & 1 != 0)
    let d = endpoint(19, ipv6: mode & 2 != 0)
    let datagram = mode & 4 != 0
    let source: SocketAddress? = mode & 8 != 0 ? nil : s
    let destination: SocketAddress? = mode & 16 != 0 ? nil : d
    for v in [ProxyProtocolVersion.v1, .v2] {
        var out = [UInt8](repeating: 0, count: ProxyHeaderEncoder.maxLength)
        let n = out.withUnsafeMutableBytes {
            ProxyHeaderEncoder.encode(v, datagram: datagram, source: source, destination: destination, into: $0)
        }
        precondition(n > 0 && n <= ProxyHeaderEncoder.maxLength)
        let r = out.withUnsafeBytes { ProxyHeaderParser.parse(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        guard case .done(let consumed, let carried) = r else { preconditionFailure("encoded header does not parse: \(r)") }
        precondition(consumed == n)
        if let src = source, let dst = destination, v == .v2 || !datagram {
            guard let c = carried else { preconditionFailure("addresses lost") }
            precondition(c.datagram == datagram)
            precondition(sameAddress(c.source, src) && sameAddress(c.destination, dst), "addresses changed")
        } else {
            precondition(carried == nil)
        }
    }
}

private func roundTrip(_ v: ProxyProtocolVersion, datagram: Bool, _ s: SocketAddress, _ d: SocketAddress) {
    var out = [UInt8](repeating: 0, count: ProxyHeaderEncoder.maxLength)
    let n = out.withUnsafeMutableBytes {
        ProxyHeaderEncoder.encode(v, datagram: datagram, source: s, destination: d, into: $0)
    }
    precondition(n > 0)
    let r = out.withUnsafeBytes { ProxyHeaderParser.parse(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    precondition(r == .done(consumed: n, carried: .init(source: s, destination: d, datagram: datagram)),
                 "re-encoded header parses differently")
}

/// Equal after the encoder's mapping: an IPv4 address against an IPv6 one compares as
/// `::ffff:a.b.c.d` (mixed families are sent IPv4-mapped).
private func sameAddress(_ got: SocketAddress, _ sent: SocketAddress) -> Bool {
    guard got.port == sent.port else { return false }
    if let g = got.ipv4Address, let s = sent.ipv4Address { return g == s }
    if let g = got.ipv6Address {
        if let s = sent.ipv6Address { return g == s }
        if let s = sent.ipv4Address { return g.0 == 0 && g.1 == 0xFFFF_0000_0000 | UInt64(s) }
    }
    return false
}
