internal import SluiceCore

/// One etcd client URL: `http://HOST:PORT` or `https://HOST:PORT` with HOST an IPv4 literal, a
/// bracketed IPv6 literal or `localhost`. Host names are refused: resolving them would be a
/// blocking call without a bound (`getaddrinfo`) on the control plane.
struct EtcdEndpoint: Sendable, Equatable, CustomStringConvertible {
    let address: SocketAddress
    /// As written, for messages.
    let url: String
    /// The `Host` header: `host:port` as written.
    let authority: String
    /// Whether the endpoint is `https://`.
    let tls: Bool
    /// The host as written (without brackets): the name or address the certificate must match.
    let host: String

    var description: String { url }

    static func == (a: EtcdEndpoint, b: EtcdEndpoint) -> Bool { a.url == b.url }

    /// Parses `url`; throws `.unavailable` with the reason when it is not one Sluice can use.
    init(_ url: String) throws(EtcdError) {
        self.url = url
        var rest = Substring(url)
        if rest.hasPrefix("https://") {
            tls = true
            rest = rest.dropFirst("https://".count)
        } else if rest.hasPrefix("http://") {
            tls = false
            rest = rest.dropFirst("http://".count)
        } else {
            throw .unavailable("\(url): endpoint must start with http:// or https://")
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("@") else { throw .unavailable("\(url): endpoint must be http://HOST:PORT") }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .unavailable("\(url): unclosed [") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw .unavailable("\(url): missing port") }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw .unavailable("\(url): missing port") }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard let port = UInt16(portText), port > 0 else { throw .unavailable("\(url): bad port") }
        let numeric = host == "localhost" ? "127.0.0.1" : String(host)
        guard let a = SocketAddress(host: numeric, port: port) else {
            throw .unavailable("\(url): host must be an IP address or localhost (names are not resolved)")
        }
        address = a
        authority = String(rest)
        self.host = String(host)
    }
}
