#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Parses `source:` address ranges: `10.0.0.0/8`, `2001:db8::/32`, `::1/128`. An address
/// without a prefix is one host (`/32` or `/128`); IPv6 may be written in brackets
/// (`[::1]/128`). Bits past the prefix are cleared.
enum CIDRParser {
    static func parse(_ text: String) -> Result<CIDR, CIDRProblem> {
        var addressText = Substring(text)
        var prefixText: Substring?
        if let slash = text.lastIndex(of: "/") {
            addressText = text[..<slash]
            prefixText = text[text.index(after: slash)...]
        }
        if addressText.hasPrefix("["), addressText.hasSuffix("]") {
            addressText = addressText.dropFirst().dropLast()
        }
        guard !addressText.isEmpty else { return .failure(.badAddress("")) }
        let isV6 = addressText.contains(":")
        var storage = in6_addr()  // large enough for either family
        let parsed = withUnsafeMutableBytes(of: &storage) {
            inet_pton(isV6 ? AF_INET6 : AF_INET, String(addressText), $0.baseAddress)
        }
        guard parsed == 1 else { return .failure(.badAddress(String(addressText))) }
        let count = isV6 ? 16 : 4
        var bytes = withUnsafeBytes(of: &storage) { Array($0.prefix(count)) }
        let bits = count * 8
        var prefix = bits
        if let prefixText {
            guard !prefixText.isEmpty, prefixText.count <= 3, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(prefixText), value <= bits
            else { return .failure(.badPrefix(String(prefixText), max: bits)) }
            prefix = value
        }
        for index in 0..<count {
            let keep = max(0, min(8, prefix - index * 8))
            bytes[index] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return .success(CIDR(family: isV6 ? .inet6 : .inet, address: bytes, prefixLength: prefix))
    }
}

/// Why a CIDR did not parse; `message` completes "expected a CIDR ..., got X: ".
enum CIDRProblem: Error, Equatable {
    case badAddress(String)
    case badPrefix(String, max: Int)

    var message: String {
        switch self {
        case .badAddress(let text): "\"\(text)\" is not an IPv4 or IPv6 address"
        case .badPrefix(let text, let max): "prefix length \"\(text)\" is not a number from 0 to \(max)"
        }
    }
}
