/// Request classes for HTTP desync mitigation, after AWS ALB / `http_desync_guardian`
/// (SPEC §3 "Desync mitigation"). Ordered: a request takes the highest class any check gives.
///
/// * `compliant`: RFC 9112 compliant, no known risk.
/// * `acceptable`: not compliant, but no known desync risk.
/// * `ambiguous`: servers may disagree on it (defensive mode forwards, then closes both connections).
/// * `severe`: malformed or crafted (defensive mode rejects with 400 and closes).
public enum DesyncClass: UInt8, Sendable, Comparable {
    case compliant, acceptable, ambiguous, severe

    public static func < (a: DesyncClass, b: DesyncClass) -> Bool { a.rawValue < b.rawValue }

    /// Lower-case name for logs and metric labels.
    public var name: String {
        switch self {
        case .compliant: return "compliant"
        case .acceptable: return "acceptable"
        case .ambiguous: return "ambiguous"
        case .severe: return "severe"
        }
    }
}

/// Why a request got its class. `code` is ALB's spelling where ALB has the reason; reasons ALB
/// does not have are marked "Sluice" below.
public enum DesyncReason: UInt8, Sendable {
    case none
    /// Ambiguous: both Transfer-Encoding and Content-Length.
    case bothTeClPresent
    /// Severe: Content-Length values that differ.
    case multipleContentLength
    /// Ambiguous: Content-Length given more than once with the same value (`5, 5` too).
    case duplicateContentLength
    /// Severe: a Transfer-Encoding that is not a list of known codings ending in one `chunked`.
    case badTransferEncoding
    /// Severe: NUL, CR or LF inside a header line, whitespace before the colon, a bare-LF line
    /// end, leading whitespace on the first header line, or an obs-fold of a framing header.
    case badHeader
    /// Severe: NUL, CR or LF in the request-target, or a target of the wrong form.
    case badUri
    /// Ambiguous: other control characters in the request-target.
    case ambiguousUri
    /// Acceptable: an unescaped space in the request-target.
    case spaceInUri
    /// Severe: a method that is not a token.
    case badMethod
    /// Severe: a version that is not `HTTP/1.x`.
    case badVersion
    /// Ambiguous: a header line with an empty name (or only whitespace).
    case emptyHeader
    /// Ambiguous: a header name that normalises to Transfer-Encoding or Content-Length.
    case suspiciousHeader
    /// Acceptable: control characters or obs-text in a header value, or a name that is not a token.
    case nonCompliantHeader
    /// Ambiguous: Content-Length other than 0 on GET/HEAD.
    case undefinedContentLengthSemantics
    /// Ambiguous: Transfer-Encoding on GET/HEAD or in an HTTP/1.0 request.
    case undefinedTransferEncodingSemantics
    /// Acceptable: `Content-Length: 0` on GET/HEAD.
    case getHeadZeroContentLength
    /// Severe: a Content-Length that is not a plain decimal number (`+5`, `0x10`, `-1`, overflow).
    case badContentLength
    /// Severe: `chunked` applied more than once.
    case multipleTransferEncodingChunked
    /// Acceptable: `HTTP/1.2` ... `HTTP/1.9` (treated as 1.1).
    case nonCompliantVersion
    /// Ambiguous: obs-fold (a header line starting with whitespace).
    case multilineHeader
    /// Ambiguous: a header line without a colon (the line is dropped, never forwarded).
    case missingHeaderColon
    /// Acceptable (Sluice): obs-text (bytes >= 0x80) in the request-target.
    case nonCompliantUri
    /// Acceptable (Sluice): an HTTP/1.1 request without Host.
    case missingHost
    /// Severe (Sluice): more than one Host header (RFC 9112 §3.2 requires a 400).
    case multipleHost
    /// Severe (Sluice): a chunked request body whose framing broke — an invalid chunk size
    /// (not 1...15 hex digits, a sign, `0x`), no CRLF after chunk data, a bare CR or LF, a
    /// control byte in an extension, an oversized size line or trailer section. Found while
    /// the body streams, after the head was classed; Sluice answers 400.
    case invalidChunkSize

    /// ALB's spelling (`BothTeClPresent`, ...), for access logs and metric labels.
    public var code: String {
        switch self {
        case .none: return "Compliant"
        case .bothTeClPresent: return "BothTeClPresent"
        case .multipleContentLength: return "MultipleContentLength"
        case .duplicateContentLength: return "DuplicateContentLength"
        case .badTransferEncoding: return "BadTransferEncoding"
        case .badHeader: return "BadHeader"
        case .badUri: return "BadUri"
        case .ambiguousUri: return "AmbiguousUri"
        case .spaceInUri: return "SpaceInUri"
        case .badMethod: return "BadMethod"
        case .badVersion: return "BadVersion"
        case .emptyHeader: return "EmptyHeader"
        case .suspiciousHeader: return "SuspiciousHeader"
        case .nonCompliantHeader: return "NonCompliantHeader"
        case .undefinedContentLengthSemantics: return "UndefinedContentLengthSemantics"
        case .undefinedTransferEncodingSemantics: return "UndefinedTransferEncodingSemantics"
        case .getHeadZeroContentLength: return "GetHeadZeroContentLength"
        case .badContentLength: return "BadContentLength"
        case .multipleTransferEncodingChunked: return "MultipleTransferEncodingChunked"
        case .nonCompliantVersion: return "NonCompliantVersion"
        case .multilineHeader: return "MultilineHeader"
        case .missingHeaderColon: return "MissingHeaderColon"
        case .nonCompliantUri: return "NonCompliantUri"
        case .missingHost: return "MissingHost"
        case .multipleHost: return "MultipleHost"
        case .invalidChunkSize: return "InvalidChunkSize"
        }
    }
}

/// A request's class and the reason for it. The reason is the first check that produced the
/// final (highest) class, as in `http_desync_guardian`.
public struct DesyncVerdict: Sendable, Equatable {
    public var klass: DesyncClass
    public var reason: DesyncReason

    public init(klass: DesyncClass = .compliant, reason: DesyncReason = .none) {
        self.klass = klass
        self.reason = reason
    }

    /// A compliant verdict.
    public static let compliant = DesyncVerdict()

    /// Raises the class to `k` with `r` if `k` is higher than the current class.
    @inline(__always)
    public mutating func raise(_ k: DesyncClass, _ r: DesyncReason) {
        if k > klass {
            klass = k
            reason = r
        }
    }
}

/// Why the parser could not produce a head at all. `status` is the answer Sluice sends
/// (400, 414, 431, 501; 502 from the response parser); `reason` is the desync reason to log.
/// The values are small and trivially copyable, so throwing/returning them never allocates.
public struct HTTPParseError: Error, Sendable, Equatable {
    public var status: Int
    public var reason: DesyncReason

    public init(status: Int, reason: DesyncReason) {
        self.status = status
        self.reason = reason
    }

    /// 414: the request line is longer than `HTTPLimits.maxRequestLine`.
    public static let uriTooLong = HTTPParseError(status: 414, reason: .none)
    /// 431: the head is longer than `maxHeadBytes` or has more than `maxHeaders` fields.
    public static let headTooLarge = HTTPParseError(status: 431, reason: .none)
    /// 502: a target's response head could not be parsed.
    public static let badResponse = HTTPParseError(status: 502, reason: .none)
}

/// The outcome of one `parse` call.
public enum HTTPParseResult: Sendable, Equatable {
    /// The head is not complete yet; call again with more bytes (same start).
    case needMore
    /// The head is complete; read `head`.
    case complete
    /// The head cannot be parsed; answer `status` and close.
    case error(HTTPParseError)
}
