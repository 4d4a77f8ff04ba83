internal import SluiceCore

/// One etcd client URL: `http://HOST:PORT` with HOST an IPv4 literal, a bracketed IPv6 literal
/// or `localhost`. Host names are refused: resolving them would be a blocking call without a
/// bound (`getaddrinfo`) on the control plane.
struct EtcdEndpoint: Sendable, Equatable, CustomStringConvertible {
    let address: SocketAddress
    /// As written, for messages.
    let url: String
    /// The `Host` header: `host:port` as written.
    let authority: String

    var description: String { url }

    static func == (a: EtcdEndpoint, b: EtcdEndpoint) -> Bool { a.url == b.url }

    /// Parses `url`; throws `.unavailable` with the reason when it is not one Sluice can use.
    init(_ url: String) throws(EtcdError) {
        self.url = url
        var rest = Substring(url)
        if rest.hasPrefix("https://") {
            throw .unavailable("\(url): https endpoints are not supported yet (TLS to etcd is not implemented)")
        }
        guard rest.hasPrefix("http://") else { throw .unavailable("\(url): endpoint must start with http://") }
        rest = rest.dropFirst("http://".count)
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
    }
}
