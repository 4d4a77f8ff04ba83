/// The connection header on a response Sluice writes itself.
public enum ConnectionHeader: UInt8, Sendable {
    /// Nothing: an HTTP/1.1 client keeps the connection.
    case none
    /// `connection: close`.
    case close
    /// `connection: keep-alive`: an HTTP/1.0 client that asked for keep-alive (it closes
    /// otherwise).
    case keepAlive

    /// What an answer to a request with this `versionMinor` needs when the connection stays
    /// open (`close` false) or not.
    @inline(__always)
    public static func forAnswer(close: Bool, versionMinor: UInt8) -> ConnectionHeader {
        close ? .close : (versionMinor == 0 ? .keepAlive : .none)
    }
}

/// A `redirect` action (SPEC §3) compiled once into segments — literal text or one of the
/// placeholders `#{protocol}`, `#{host}`, `#{port}`, `#{path}` (without its leading `/`) and
/// `#{query}` — and filled in one pass per request. The request's own bytes are copied, never
/// scanned for placeholders, so a `#{…}` sent by a client stays text.
///
/// The Location is at most `maxLocation` bytes; a longer one is not written (`write` returns
/// nil) and the caller answers `tooLongStatus` (414: the client's host, path or query made it
/// too long; the template alone is bounded by the config). The work per request is linear in
/// the template's length plus `maxLocation`.
public struct RedirectTemplate: Sendable {
    public enum Placeholder: UInt8, Sendable, CaseIterable {
        case `protocol`, host, port, path, query

        var name: String {
            switch self {
            case .protocol: return "#{protocol}"
            case .host: return "#{host}"
            case .port: return "#{port}"
            case .path: return "#{path}"
            case .query: return "#{query}"
            }
        }
    }

    public enum Segment: Sendable, Equatable {
        case literal([UInt8])
        case placeholder(Placeholder)
    }

    /// Longest Location written.
    public static let maxLocation = 8 * 1024
    /// The status answered instead of a redirect whose Location would be longer.
    public static let tooLongStatus = 414

    public let status: Int
    public let scheme: [Segment]
    public let host: [Segment]
    public let port: [Segment]
    public let path: [Segment]
    public let query: [Segment]

    /// Parts left out (nil) keep the request's value, as in ALB.
    public init(status: Int, scheme: String?, host: String?, port: String?, path: String?, query: String?) {
        self.status = status
        self.scheme = Self.compile(scheme ?? "#{protocol}")
        self.host = Self.compile(host ?? "#{host}")
        self.port = Self.compile(port ?? "#{port}")
        self.path = Self.compile(path ?? "/#{path}")
        self.query = Self.compile(query ?? "#{query}")
    }

    /// Splits a template at the known placeholders; anything else (also an unknown `#{x}`)
    /// is literal.
    public static func compile(_ template: String) -> [Segment] {
        let t = Array(template.utf8)
        var out: [Segment] = []
        var literal: [UInt8] = []
        var i = 0
        outer: while i < t.count {
            if t[i] == UInt8(ascii: "#") {
                for p in Placeholder.allCases {
                    let name = Array(p.name.utf8)
                    if t.count - i >= name.count && Array(t[i..<i + name.count]) == name {
                        if !literal.isEmpty { out.append(.literal(literal)) }
                        literal = []
                        out.append(.placeholder(p))
                        i += name.count
                        continue outer
                    }
                }
            }
            literal.append(t[i])
            i += 1
        }
        if !literal.isEmpty { out.append(.literal(literal)) }
        return out
    }

    /// Writes the whole redirect response for the request in `head` (ranges into `source`)
    /// into `out`: status line, `location`, `content-length: 0`, the connection header.
    /// `proto` is what `#{protocol}` becomes; `listenerPort` what `#{port}` becomes. Returns the
    /// bytes written, or nil when the Location would exceed `maxLocation` or `out` is too
    /// small. Allocates nothing.
    public func write(
        for head: HTTPRequestHead, source: UnsafeRawBufferPointer, proto: StaticString = "http",
        listenerPort: UInt16, connection: ConnectionHeader, into out: UnsafeMutableRawBufferPointer
    ) -> Int? {
        var w = Output(out)
        w.literal("HTTP/1.1 ")
        w.decimal(UInt64(status))
        w.byte(0x20)
        w.literal(Self.reason(status))
        w.literal("\r\nlocation: ")
        guard let start = w.result else { return nil }
        // The Location is written through its own cursor, bounded by maxLocation.
        let end = min(out.count, start + Self.maxLocation)
        var loc = Output(UnsafeMutableRawBufferPointer(rebasing: out[start..<end]))
        let values = Values(head: head, source: source, proto: proto, port: listenerPort)

        let schemeStart = loc.n
        fill(scheme, values, &loc)
        let https = loc.n - schemeStart == 5 && !loc.overflow && loc.equals(schemeStart, "https")
        loc.literal("://")
        fill(host, values, &loc)
        // `:port`, unless empty or the scheme's default.
        let colon = loc.n
        loc.byte(UInt8(ascii: ":"))
        let portStart = loc.n
        fill(port, values, &loc)
        let portCount = loc.n - portStart
        if !loc.overflow
            && (portCount == 0 || (https ? portCount == 3 && loc.equals(portStart, "443")
                                         : portCount == 2 && loc.equals(portStart, "80")))
        {
            loc.n = colon
        }
        // The path, with one leading `/`.
        let slash = loc.n
        loc.byte(UInt8(ascii: "/"))
        fill(path, values, &loc)
        if !loc.overflow && loc.n - slash >= 2 && loc.out[slash + 1] == UInt8(ascii: "/") {
            let base = loc.out.baseAddress!
            (base + slash).copyMemory(from: base + slash + 1, byteCount: loc.n - slash - 1)
            loc.n -= 1
        }
        // `?query`, unless empty.
        let mark = loc.n
        loc.byte(UInt8(ascii: "?"))
        let queryStart = loc.n
        fill(query, values, &loc)
        if !loc.overflow && loc.n == queryStart { loc.n = mark }

        guard let locationCount = loc.result else { return nil }
        w.n = start + locationCount
        w.literal("\r\ncontent-length: 0\r\n")
        switch connection {
        case .none: break
        case .close: w.literal("connection: close\r\n")
        case .keepAlive: w.literal("connection: keep-alive\r\n")
        }
        w.crlf()
        return w.result
    }

    /// What the placeholders stand for in one request.
    private struct Values {
        var source: UnsafeRawBufferPointer
        var host: ByteRange
        var path: ByteRange
        var query: ByteRange
        var proto: StaticString
        var port: UInt16

        init(head: HTTPRequestHead, source: UnsafeRawBufferPointer, proto: StaticString, port: UInt16) {
            self.source = source
            self.proto = proto
            self.port = port
            host = Self.withoutPort(head.host ?? .empty, source)
            path = head.path
            if path.count > 0 && source[Int(path.start)] == UInt8(ascii: "/") {
                path = ByteRange(Int(path.start) + 1, path.end)
            }
            query = head.query
        }

        /// `host:port` → `host`, `[v6]:port` → `[v6]`; `[v6]` stays.
        static func withoutPort(_ r: ByteRange, _ p: UnsafeRawBufferPointer) -> ByteRange {
            var i = r.end
            while i > Int(r.start) {
                i -= 1
                if p[i] == UInt8(ascii: "]") { return r }
                if p[i] == UInt8(ascii: ":") { return ByteRange(Int(r.start), i) }
            }
            return r
        }
    }

    private func fill(_ segments: [Segment], _ v: Values, _ w: inout Output) {
        for s in segments {
            if w.overflow { return }
            switch s {
            case .literal(let bytes):
                bytes.withUnsafeBytes { w.bytes($0) }
            case .placeholder(.protocol):
                w.literal(v.proto)
            case .placeholder(.host):
                w.value(v.source, v.host)  // CR, LF, NUL become spaces: the field cannot split
            case .placeholder(.port):
                w.decimal(UInt64(v.port))
            case .placeholder(.path):
                w.target(v.source, v.path)  // non-visible bytes percent-encoded
            case .placeholder(.query):
                w.target(v.source, v.query)
            }
        }
    }

    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        default: return "Redirect"
        }
    }
}

extension Output {
    /// Whether the bytes written at `at` equal `s`.
    func equals(_ at: Int, _ s: StaticString) -> Bool {
        let k = s.utf8CodeUnitCount
        guard at + k <= n else { return false }
        for i in 0..<k where out[at + i] != s.utf8Start[i] { return false }
        return true
    }
}
