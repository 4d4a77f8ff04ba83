/// Writes heads for forwarding, copying spans from the received bytes into a caller-owned
/// buffer; never allocates. Every function returns the bytes written, or nil if `out` is too
/// small (nothing useful is left in `out` then).
public enum HTTPWriter {
    /// What to do with a received `X-Forwarded-For` (SPEC §3 "Headers", listener key `xff`).
    public enum XFFMode: UInt8, Sendable {
        /// `existing, client` (several received fields are joined with ", "), or just `client`.
        case append
        /// Forward as received; add nothing.
        case preserve
        /// Drop it; add nothing.
        case remove
    }

    /// A client address as text (`192.0.2.1`, `2001:db8::1`), stored inline so building
    /// `ForwardOptions` per request allocates nothing. At most `capacity` bytes.
    public struct AddressText: Sendable {
        /// Longest text kept (an IPv6 address with an IPv4 tail and zone is below this).
        public static let capacity = 64
        private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        /// Number of bytes used.
        public private(set) var count: Int = 0

        /// The empty text.
        public init() {}

        /// Copies `text` (at most `capacity` bytes; longer text is cut).
        public init(_ text: UnsafeRawBufferPointer) {
            let n = min(text.count, Self.capacity)
            withUnsafeMutableBytes(of: &storage) { dst in
                if n > 0 { dst.baseAddress!.copyMemory(from: text.baseAddress!, byteCount: n) }
            }
            count = n
        }

        /// Copies the UTF-8 of `text` (cold path: tests, configuration).
        public init(_ text: String) {
            var s = text
            self = s.withUTF8 { AddressText(UnsafeRawBufferPointer($0)) }
        }

        /// Calls `body` with the bytes.
        public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
        }
    }

    /// Per-request forwarding parameters.
    public struct ForwardOptions {
        /// X-Forwarded-For handling.
        public var xff: XFFMode
        /// The client's address as text, for X-Forwarded-For.
        public var clientAddress: AddressText
        /// `X-Forwarded-Proto` value: "http" or "https".
        public var proto: StaticString
        /// `X-Forwarded-Port`: the listener's port.
        public var port: UInt16
        /// Written as `x-sluice-trace: <16 lower-case hex digits>` when the request has none.
        public var traceID: UInt64
        /// True adds nothing for HTTP/1.1 (persistent by default) and `Connection: keep-alive`
        /// for an HTTP/1.0 request; false writes `Connection: close`.
        public var keepAliveToTarget: Bool
        /// Complete header lines (each ending in CRLF) Sluice adds, such as the mutual-TLS
        /// client certificate headers (SPEC §3); empty for none. Borrowed for the call.
        public var extraHeaders: UnsafeRawBufferPointer

        public init(
            xff: XFFMode = .append, clientAddress: AddressText, proto: StaticString = "http", port: UInt16,
            traceID: UInt64, keepAliveToTarget: Bool = true,
            extraHeaders: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
        ) {
            self.extraHeaders = extraHeaders
            self.xff = xff
            self.clientAddress = clientAddress
            self.proto = proto
            self.port = port
            self.traceID = traceID
            self.keepAliveToTarget = keepAliveToTarget
        }
    }

    /// Writes the request head for the target into `out`:
    /// * the request line, with the method and target copied from `source` (a method byte that
    ///   is not a token character becomes `_`: such a request is severe and only forwarded in
    ///   monitor mode, and must not break the line); any target byte
    ///   that is not visible ASCII (space, CTL, obs-text) is percent-encoded, so an accepted
    ///   non-compliant target cannot split the line downstream; the version is the client's
    ///   (`HTTP/1.0` stays 1.0, so nothing has to be invented for a request without Host);
    /// * the headers in order, minus hop-by-hop ones (Connection, Keep-Alive, Proxy-Connection,
    ///   TE, Trailer, Upgrade, and any field the Connection header names) — for a WebSocket
    ///   upgrade `Upgrade` is kept and `Connection: Upgrade` written; any CR, LF or NUL inside a
    ///   value (obs-fold) becomes a space;
    /// * Content-Length fields replaced by one normalised `Content-Length` (none at all when the
    ///   body is chunked: RFC 9112 §6.3 says TE overrides CL and the CL must go);
    /// * X-Forwarded-For per `options.xff`, X-Forwarded-Proto and X-Forwarded-Port replaced by
    ///   ours, `x-sluice-trace` added if absent; Host unchanged;
    /// * every `X-Sluice-Client-Cert…` field from the client removed (only Sluice sets them, from
    ///   a verified TLS session), then `options.extraHeaders` appended.
    public static func writeUpstreamHead(
        _ head: HTTPRequestHead, source: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer,
        options: ForwardOptions
    ) -> Int? {
        var w = Output(out)
        w.method(source, head.method)
        w.byte(0x20)
        w.target(source, head.target)
        w.literal(head.versionMinor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n")

        let extraConnectionTokens = hasExtraConnectionTokens(head, source)
        var hasTrace = false
        var xffCount = 0
        for h in head.headers {
            switch h.kind {
            case .connection, .keepAlive, .proxyConnection, .te, .trailer:
                continue
            case .upgrade:
                if !head.upgradeWebSocket { continue }
            case .contentLength, .xForwardedProto, .xForwardedPort:
                continue
            case .xForwardedFor:
                xffCount &+= 1
                if options.xff != .preserve { continue }
            case .other:
                if source.equalsLowercase(Int(h.name.start), Int(h.name.count), "x-sluice-trace") { hasTrace = true }
                if isClientCertHeader(source, h.name) { continue }
                if extraConnectionTokens && isNominatedByConnection(h.name, head, source) { continue }
            default:
                break
            }
            w.field(source, h)
        }

        if head.upgradeWebSocket {
            w.literal("Connection: Upgrade\r\n")
        } else if !options.keepAliveToTarget {
            w.literal("Connection: close\r\n")
        } else if head.versionMinor == 0 {
            w.literal("Connection: keep-alive\r\n")
        }
        if head.hasContentLength && head.framing != .chunked {
            w.literal("Content-Length: ")
            if case .contentLength(let n) = head.framing { w.decimal(n) } else { w.byte(0x30) }
            w.crlf()
        }
        if options.xff == .append {
            w.literal("X-Forwarded-For: ")
            if xffCount > 0 {
                for h in head.headers where h.kind == .xForwardedFor && !h.value.isEmpty {
                    w.value(source, h.value)
                    w.literal(", ")
                }
            }
            options.clientAddress.withBytes { w.bytes($0) }
            w.crlf()
        }
        w.literal("X-Forwarded-Proto: ")
        w.literal(options.proto)
        w.literal("\r\nX-Forwarded-Port: ")
        w.decimal(UInt64(options.port))
        w.crlf()
        if !hasTrace {
            w.literal("x-sluice-trace: ")
            w.hex16(options.traceID)
            w.crlf()
        }
        if options.extraHeaders.count > 0 { w.bytes(options.extraHeaders) }
        w.crlf()
        return w.result
    }

    /// Whether a field name starts with `x-sluice-client-cert` (any case): the mutual-TLS
    /// headers a client must not be able to forge.
    static func isClientCertHeader(_ p: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        let prefix: StaticString = "x-sluice-client-cert"
        let n = prefix.utf8CodeUnitCount
        guard Int(name.count) >= n else { return false }
        return p.equalsLowercase(Int(name.start), n, prefix)
    }

    /// Writes a response head for the client: `HTTP/1.1 <status> <reason>` and the target's
    /// headers minus hop-by-hop ones (all kept for a 101, whose Connection/Upgrade the client
    /// needs), minus Content-Length when the body is chunked, plus `Connection: close` when
    /// `close` is true — or `Connection: keep-alive` when `clientVersionMinor` is 0 and the
    /// connection stays open (an HTTP/1.0 client closes otherwise). Addition to the brief:
    /// `clientVersionMinor` (default 1).
    public static func writeDownstreamHead(
        _ head: HTTPResponseHead, source: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer,
        close: Bool, clientVersionMinor: UInt8 = 1
    ) -> Int? {
        var w = Output(out)
        w.literal("HTTP/1.1 ")
        w.decimal(UInt64(head.status))
        w.byte(0x20)
        w.value(source, head.reason)
        w.crlf()
        for h in head.headers {
            if !head.isUpgrade && h.kind.isHopByHop { continue }
            if h.kind == .contentLength && head.framing == .chunked { continue }
            w.field(source, h)
        }
        if !head.isUpgrade {
            if close {
                w.literal("Connection: close\r\n")
            } else if clientVersionMinor == 0 {
                w.literal("Connection: keep-alive\r\n")
            }
        }
        w.crlf()
        return w.result
    }

    /// Whether a Connection header lists anything besides close, keep-alive and upgrade.
    private static func hasExtraConnectionTokens(_ head: HTTPRequestHead, _ p: UnsafeRawBufferPointer) -> Bool {
        var extra = false
        for h in head.headers where h.kind == .connection {
            ListValue.forEach(p, h.value) { s, e in
                let n = e &- s
                if n == 0 || p.equalsLowercase(s, n, "close") || p.equalsLowercase(s, n, "keep-alive")
                    || p.equalsLowercase(s, n, "upgrade")
                {
                    return true
                }
                extra = true
                return false
            }
            if extra { return true }
        }
        return false
    }

    /// Whether a Connection header names the field `name` (RFC 9110 §7.6.1).
    private static func isNominatedByConnection(_ name: ByteRange, _ head: HTTPRequestHead, _ p: UnsafeRawBufferPointer)
        -> Bool
    {
        var found = false
        for h in head.headers where h.kind == .connection {
            ListValue.forEach(p, h.value) { s, e in
                if e &- s == Int(name.count) {
                    var i = 0
                    while i < e &- s && ByteClass.lower(p[s &+ i]) == ByteClass.lower(p[Int(name.start) &+ i]) { i &+= 1 }
                    if i == e &- s { found = true; return false }
                }
                return true
            }
            if found { return true }
        }
        return false
    }
}

/// A bounds-checked cursor over the output buffer; after the first write that does not fit,
/// everything is ignored and `result` is nil.
struct Output {
    let out: UnsafeMutableRawBufferPointer
    var n = 0
    var overflow = false

    init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

    var result: Int? { overflow ? nil : n }

    @inline(__always)
    mutating func fits(_ k: Int) -> Bool {
        if overflow || out.count &- n < k {
            overflow = true
            return false
        }
        return true
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        guard fits(1) else { return }
        out[n] = b
        n &+= 1
    }

    @inline(__always)
    mutating func crlf() {
        guard fits(2) else { return }
        out[n] = 0x0D
        out[n &+ 1] = 0x0A
        n &+= 2
    }

    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        guard b.count > 0, fits(b.count) else { return }
        (out.baseAddress! + n).copyMemory(from: b.baseAddress!, byteCount: b.count)
        n &+= b.count
    }

    mutating func literal(_ s: StaticString) {
        bytes(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func range(_ p: UnsafeRawBufferPointer, _ r: ByteRange) {
        guard r.count > 0 else { return }
        bytes(UnsafeRawBufferPointer(rebasing: p[Int(r.start)..<r.end]))
    }

    /// A header value; CR, LF and NUL (left by an obs-fold or a non-compliant request) become SP.
    mutating func value(_ p: UnsafeRawBufferPointer, _ r: ByteRange) {
        let k = Int(r.count)
        guard k > 0, fits(k) else { return }
        var i = 0
        let s = Int(r.start)
        while i < k {
            let b = p[s &+ i]
            out[n &+ i] = ByteClass.table[Int(b)] & ByteClass.fatal != 0 ? 0x20 : b
            i &+= 1
        }
        n &+= k
    }

    /// `name: value\r\n`.
    mutating func field(_ p: UnsafeRawBufferPointer, _ h: HTTPHeader) {
        range(p, h.name)
        literal(": ")
        value(p, h.value)
        crlf()
    }

    /// The method with every non-token byte replaced by `_`.
    mutating func method(_ p: UnsafeRawBufferPointer, _ r: ByteRange) {
        let k = Int(r.count)
        guard k > 0, fits(k) else { return }
        let s = Int(r.start)
        for i in 0..<k {
            let b = p[s &+ i]
            out[n &+ i] = ByteClass.table[Int(b)] & ByteClass.token != 0 ? b : 0x5F
        }
        n &+= k
    }

    /// The request-target with every byte that is not visible ASCII percent-encoded.
    mutating func target(_ p: UnsafeRawBufferPointer, _ r: ByteRange) {
        var i = Int(r.start)
        let e = r.end
        while i < e && !overflow {  // stop at the first write that does not fit
            let b = p[i]
            if ByteClass.table[Int(b)] & ByteClass.vchar != 0 {
                byte(b)
            } else {
                guard fits(3) else { return }
                out[n] = 0x25
                out[n &+ 1] = Self.hexDigit(b >> 4, upper: true)
                out[n &+ 2] = Self.hexDigit(b & 0xF, upper: true)
                n &+= 3
            }
            i &+= 1
        }
    }

    mutating func decimal(_ v: UInt64) {
        var digits = 1
        var t = v
        while t >= 10 { t /= 10; digits &+= 1 }
        guard fits(digits) else { return }
        var x = v
        var i = digits &- 1
        while i >= 0 {
            out[n &+ i] = UInt8(truncatingIfNeeded: x % 10) &+ 0x30
            x /= 10
            i &-= 1
        }
        n &+= digits
    }

    /// 16 lower-case hex digits.
    mutating func hex16(_ v: UInt64) {
        guard fits(16) else { return }
        for i in 0..<16 {
            out[n &+ i] = Self.hexDigit(UInt8(truncatingIfNeeded: v >> UInt64((15 &- i) &* 4)) & 0xF, upper: false)
        }
        n &+= 16
    }

    @inline(__always)
    static func hexDigit(_ d: UInt8, upper: Bool) -> UInt8 {
        d < 10 ? 0x30 &+ d : (upper ? 0x41 : 0x61) &+ d &- 10
    }
}
