#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Parses config addresses (SPEC §2) into `SocketAddressSpec`s.
///
/// Accepted forms, each with a port from 1 to 65535:
/// - `1.2.3.4:80` — numeric IPv4;
/// - `[::1]:80` — numeric IPv6 in brackets (the host is normalised, `[0::1]` gives `::1`);
/// - `*:80` — every IPv4 address (`0.0.0.0`);
/// - `localhost:80`, `db.internal:5432` — a host name, resolved once with `getaddrinfo`; the
///   first IPv4 result is taken, else the first IPv6 one.
///
/// Resolution blocks the calling thread; call this on the control plane only.
public enum AddressParser {
    /// The address, or `nil` if `s` is malformed or its host name does not resolve.
    public static func parse(_ s: String) -> SocketAddressSpec? {
        try? parseDetailed(s).get()
    }

    /// The address, or what was wrong with it, for error messages.
    static func parseDetailed(_ s: String) -> Result<SocketAddressSpec, AddressProblem> {
        guard !s.isEmpty else { return .failure(.empty) }
        let host: Substring
        let portText: Substring
        var bracketed = false
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return .failure(.badIPv6(String(s.dropFirst()))) }
            host = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.first == ":" else {
                return .failure(rest.isEmpty ? .missingPort : .textAfterBracket(String(rest)))
            }
            portText = rest.dropFirst()
            bracketed = true
        } else {
            guard let colon = s.lastIndex(of: ":") else { return .failure(.missingPort) }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
            if host.contains(":") { return .failure(.unbracketedIPv6) }
        }
        guard !portText.isEmpty else { return .failure(.missingPort) }
        guard let port = parsePort(portText) else { return .failure(.badPort(String(portText))) }
        guard !host.isEmpty else { return .failure(.emptyHost) }

        if bracketed {
            guard let text = normalized(String(host), family: AF_INET6) else {
                return .failure(.badIPv6(String(host)))
            }
            return .success(SocketAddressSpec(family: .inet6, host: text, port: port))
        }
        if host == "*" {
            return .success(SocketAddressSpec(family: .inet, host: "0.0.0.0", port: port))
        }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            // All digits and dots: an IPv4 address or nothing (getaddrinfo would accept `1.2.3`).
            guard let text = normalized(String(host), family: AF_INET) else {
                return .failure(.badIPv4(String(host)))
            }
            return .success(SocketAddressSpec(family: .inet, host: text, port: port))
        }
        guard isHostName(host) else { return .failure(.badHostName(String(host))) }
        return resolve(String(host), port: port)
    }

    private static func parsePort(_ text: Substring) -> UInt16? {
        guard text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int(text), value >= 1, value <= 65_535
        else { return nil }
        return UInt16(value)
    }

    /// RFC 1123 names: dot-separated labels of letters, digits and inner hyphens.
    static func isHostName(_ host: Substring) -> Bool {
        guard host.utf8.count <= 253 else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    /// The canonical text of a numeric address of `family`, or `nil` if `text` is not one.
    private static func normalized(_ text: String, family: Int32) -> String? {
        var storage = in6_addr()  // large enough for either family
        let parsed = withUnsafeMutableBytes(of: &storage) { inet_pton(family, text, $0.baseAddress) }
        guard parsed == 1 else { return nil }
        return withUnsafeBytes(of: &storage) { presentation(family: family, address: $0.baseAddress) }
    }

    private static func presentation(family: Int32, address: UnsafeRawPointer?) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func resolve(_ host: String, port: UInt16) -> Result<SocketAddressSpec, AddressProblem> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if os(Linux)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let first = list else {
            let reason = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
            return .failure(.unresolvable(host, reason))
        }
        defer { freeaddrinfo(first) }

        var chosen: SocketAddressSpec?
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            let family = info.pointee.ai_family
            if let sockaddr = info.pointee.ai_addr, family == AF_INET || family == AF_INET6 {
                let text: String?
                if family == AF_INET {
                    text = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        withUnsafeBytes(of: sin.pointee.sin_addr) {
                            presentation(family: AF_INET, address: $0.baseAddress)
                        }
                    }
                } else {
                    text = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        withUnsafeBytes(of: sin6.pointee.sin6_addr) {
                            presentation(family: AF_INET6, address: $0.baseAddress)
                        }
                    }
                }
                if let text {
                    if family == AF_INET { return .success(SocketAddressSpec(family: .inet, host: text, port: port)) }
                    if chosen == nil { chosen = SocketAddressSpec(family: .inet6, host: text, port: port) }
                }
            }
            entry = info.pointee.ai_next
        }
        guard let chosen else { return .failure(.unresolvable(host, "no IPv4 or IPv6 address")) }
        return .success(chosen)
    }
}

/// Why an address did not parse; `message` completes "expected an address ..., got X: ".
enum AddressProblem: Error, Equatable {
    case empty
    case missingPort
    case badPort(String)
    case emptyHost
    case unbracketedIPv6
    case badIPv6(String)
    case textAfterBracket(String)
    case badIPv4(String)
    case badHostName(String)
    case unresolvable(String, String)

    var message: String {
        switch self {
        case .empty: "the address is empty"
        case .missingPort: "the port is missing"
        case .badPort(let text): "port \"\(text)\" is not a number from 1 to 65535"
        case .emptyHost: "the host is missing (use * for every IPv4 address)"
        case .unbracketedIPv6: "an IPv6 address needs brackets, as in [::1]:80"
        case .badIPv6(let text): "\"\(text)\" is not an IPv6 address"
        case .textAfterBracket(let text): "expected :PORT after the ], got \"\(text)\""
        case .badIPv4(let text): "\"\(text)\" is not an IPv4 address"
        case .badHostName(let text): "\"\(text)\" is not a valid host name"
        case .unresolvable(let host, let reason): "cannot resolve \"\(host)\": \(reason)"
        }
    }
}
