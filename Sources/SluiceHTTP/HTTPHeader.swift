/// Header names the proxy acts on, matched case-insensitively; all others are `.other`.
public enum HeaderName: UInt8, Sendable {
    case host, contentLength, transferEncoding, connection, keepAlive, proxyConnection, te, trailer, upgrade, expect
    case xForwardedFor, xForwardedProto, xForwardedPort, cookie, other

    /// Whether a proxy must not forward this header (RFC 9110 §7.6.1; SPEC §3 "Headers").
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade: return true
        default: return false
        }
    }

    /// Classifies the header name of `count` bytes at `start` (dispatch on length, then one
    /// case-insensitive compare).
    static func match(_ p: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> HeaderName {
        switch count {
        case 2: if p.equalsLowercase(start, 2, "te") { return .te }
        case 4: if p.equalsLowercase(start, 4, "host") { return .host }
        case 6:
            if p.equalsLowercase(start, 6, "cookie") { return .cookie }
            if p.equalsLowercase(start, 6, "expect") { return .expect }
        case 7:
            if p.equalsLowercase(start, 7, "upgrade") { return .upgrade }
            if p.equalsLowercase(start, 7, "trailer") { return .trailer }
        case 10:
            if p.equalsLowercase(start, 10, "connection") { return .connection }
            if p.equalsLowercase(start, 10, "keep-alive") { return .keepAlive }
        case 14: if p.equalsLowercase(start, 14, "content-length") { return .contentLength }
        case 15: if p.equalsLowercase(start, 15, "x-forwarded-for") { return .xForwardedFor }
        case 16:
            if p.equalsLowercase(start, 16, "proxy-connection") { return .proxyConnection }
            if p.equalsLowercase(start, 16, "x-forwarded-port") { return .xForwardedPort }
        case 17:
            if p.equalsLowercase(start, 17, "transfer-encoding") { return .transferEncoding }
            if p.equalsLowercase(start, 17, "x-forwarded-proto") { return .xForwardedProto }
        default: break
        }
        return .other
    }
}

/// One header field: spans into the parsed buffer plus the recognised name.
public struct HTTPHeader: Sendable {
    /// The field name as received (a name followed by whitespace before the colon is trimmed;
    /// that request is classed severe anyway).
    public var name: ByteRange
    /// The field value, trimmed of leading and trailing OWS. After an obs-fold it spans the
    /// folded lines (CR/LF included); `HTTPWriter` turns those into spaces when forwarding.
    public var value: ByteRange
    /// The recognised name, or `.other`.
    public var kind: HeaderName

    public init(name: ByteRange, value: ByteRange, kind: HeaderName) {
        self.name = name
        self.value = value
        self.kind = kind
    }
}

/// How the message body is delimited (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body (also for `Content-Length: 0`).
    case none
    /// Exactly this many bytes.
    case contentLength(UInt64)
    /// Chunked; find the end with `ChunkedBodyScanner`.
    case chunked
    /// Responses only: the body runs until the target closes the connection.
    case untilClose
}
