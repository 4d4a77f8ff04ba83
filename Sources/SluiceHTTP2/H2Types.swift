/// A request head received on (or sent to) an HTTP/2 stream: the pseudo-header fields and the
/// regular fields (lower-case names as received, pseudo-headers excluded).
public struct H2RequestHead: Sendable {
    public var method: ArraySlice<UInt8>
    public var scheme: ArraySlice<UInt8>
    public var authority: ArraySlice<UInt8>
    public var path: ArraySlice<UInt8>
    /// Regular header fields in order.
    public var headers: H2Headers
    /// All fields received, pseudo-headers included (for limits and logs).
    public var headerCount: Int

    public init(
        method: ArraySlice<UInt8>, scheme: ArraySlice<UInt8>, authority: ArraySlice<UInt8>,
        path: ArraySlice<UInt8>, headers: H2Headers
    ) {
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.headers = headers
        headerCount = headers.count &+ 4
    }

    /// A head from strings (client side, tests).
    public init(method: String, scheme: String = "http", authority: String, path: String,
                headers: [(String, String)] = []) {
        self.init(method: ArraySlice(method.utf8), scheme: ArraySlice(scheme.utf8),
                  authority: ArraySlice(authority.utf8), path: ArraySlice(path.utf8), headers: H2Headers(headers))
    }

    public var methodString: String { String(decoding: method, as: UTF8.self) }
    public var pathString: String { String(decoding: path, as: UTF8.self) }
    public var authorityString: String { String(decoding: authority, as: UTF8.self) }
}

/// Limits and abuse bounds of a frontend (server) HTTP/2 connection (SPEC §3 "HTTP/2 limits and
/// abuse"). Rates are per second of the session's clock.
public struct H2ServerSettings: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we announce (nghttp2 refuses streams beyond it).
    public var maxConcurrentStreams: Int = 128
    /// SETTINGS_INITIAL_WINDOW_SIZE we announce: how much request body a stream may send ahead of
    /// `consume`.
    public var initialWindowSize: Int = 65535 * 4
    /// The connection-level receive window (all streams together).
    public var connectionWindowSize: Int = 1 << 20
    /// A request whose header list (RFC 9113 §6.5.2: name + value + 32 per field) is larger gets
    /// `.headersTooLarge` (answer 431, keep the connection). Announced as SETTINGS_MAX_HEADER_LIST_SIZE.
    public var maxHeaderListSize: Int = 65536
    /// A request with more regular header fields (pseudo-headers not counted, as HTTP/1 does not
    /// count the request line) gets `.headersTooLarge`.
    public var maxHeaders: Int = 100
    /// RST_STREAM frames received per second before GOAWAY(ENHANCE_YOUR_CALM).
    public var maxResetsPerSecond: Int = 100
    /// Non-ACK SETTINGS per second.
    public var maxSettingsPerSecond: Int = 50
    /// Frames without progress per second (empty DATA without END_STREAM, empty HEADERS/CONTINUATION).
    public var maxEmptyFramesPerSecond: Int = 100
    /// Non-ACK PING per second.
    public var maxPingsPerSecond: Int = 100
    /// PRIORITY frames per second.
    public var maxPriorityPerSecond: Int = 1000
    /// WINDOW_UPDATE frames per second.
    public var maxWindowUpdatesPerSecond: Int = 2000
    /// CONTINUATION frames allowed in one header block.
    public var maxContinuations: Int = 32

    public init() {}

    var bounds: H2AbuseBounds {
        H2AbuseBounds(
            maxResetsPerSecond: maxResetsPerSecond, maxSettingsPerSecond: maxSettingsPerSecond,
            maxEmptyFramesPerSecond: maxEmptyFramesPerSecond, maxPingsPerSecond: maxPingsPerSecond,
            maxPriorityPerSecond: maxPriorityPerSecond, maxWindowUpdatesPerSecond: maxWindowUpdatesPerSecond,
            maxContinuations: maxContinuations,
            maxHeaderBlockBytes: maxHeaderListSize > Int.max / 4 ? Int.max / 2 : maxHeaderListSize &* 2)
    }
}

/// Settings of a target-side (client) HTTP/2 connection.
public struct H2ClientSettings: Sendable {
    /// SETTINGS_INITIAL_WINDOW_SIZE we announce for response bodies.
    public var initialWindowSize: Int = 65535 * 4
    /// The connection-level receive window.
    public var connectionWindowSize: Int = 1 << 20
    /// A response whose header list is larger is reset (the caller answers 502).
    public var maxHeaderListSize: Int = 65536
    /// A response with more fields is reset.
    public var maxHeaders: Int = 100
    /// Abuse bounds against a misbehaving target, as for the server.
    public var maxResetsPerSecond: Int = 1000
    public var maxSettingsPerSecond: Int = 50
    public var maxEmptyFramesPerSecond: Int = 100
    public var maxPingsPerSecond: Int = 100
    public var maxContinuations: Int = 32

    public init() {}

    var bounds: H2AbuseBounds {
        H2AbuseBounds(
            maxResetsPerSecond: maxResetsPerSecond, maxSettingsPerSecond: maxSettingsPerSecond,
            maxEmptyFramesPerSecond: maxEmptyFramesPerSecond, maxPingsPerSecond: maxPingsPerSecond,
            maxPriorityPerSecond: 1000, maxWindowUpdatesPerSecond: 4000, maxContinuations: maxContinuations,
            maxHeaderBlockBytes: maxHeaderListSize > Int.max / 4 ? Int.max / 2 : maxHeaderListSize &* 2)
    }
}

/// The result of `receive`.
public enum H2Receive: Sendable, Equatable {
    /// Keep reading; drain the events and produce output.
    case ok
    /// End the connection: flush `produceOutput` (a GOAWAY is queued), then close.
    case close(H2CloseReason)
}

/// HTTP/2 error codes (RFC 9113 §7) used by Sluice.
public enum H2ErrorCode {
    public static let noError: UInt32 = 0x0
    public static let protocolError: UInt32 = 0x1
    public static let internalError: UInt32 = 0x2
    public static let flowControlError: UInt32 = 0x3
    public static let refusedStream: UInt32 = 0x7
    public static let cancel: UInt32 = 0x8
    public static let enhanceYourCalm: UInt32 = 0xB
}

/// What a server session saw during `receive`, in order.
public enum H2ServerEvent: Sendable {
    /// A complete, valid request head on a new stream. `endStream`: no body follows.
    case request(stream: Int32, head: H2RequestHead, endStream: Bool)
    /// A request head beyond `maxHeaderListSize`/`maxHeaders`: answer 431 on the stream
    /// (`respond(stream:status:431...)`); its body, if any, is discarded by the session.
    case headersTooLarge(stream: Int32)
    /// Request body bytes. Report them with `consume(stream:bytes:)` once forwarded.
    case data(stream: Int32, bytes: ArraySlice<UInt8>)
    /// Request trailers (END_STREAM follows as `.endStream`).
    case trailers(stream: Int32, headers: H2Headers)
    /// The request is complete.
    case endStream(stream: Int32)
    /// The client reset the stream, or it was closed with an error.
    case reset(stream: Int32, errorCode: UInt32)
    /// The stream is closed both ways: free its state.
    case streamClosed(stream: Int32)
    /// The client sent GOAWAY.
    case goaway(lastStreamID: Int32, errorCode: UInt32)
}

/// What a client session saw during `receive`, in order.
public enum H2ClientEvent: Sendable {
    /// The final response head (1xx heads are dropped).
    case responseHead(stream: Int32, status: Int, headers: H2Headers, endStream: Bool)
    /// Response body bytes. Report them with `consume(stream:bytes:)` once forwarded.
    case data(stream: Int32, bytes: ArraySlice<UInt8>)
    /// Response trailers (`.endStream` follows).
    case trailers(stream: Int32, headers: H2Headers)
    /// The response is complete.
    case endStream(stream: Int32)
    /// The target reset the stream (REFUSED_STREAM means it was not processed: safe to retry).
    case reset(stream: Int32, errorCode: UInt32)
    /// The stream is closed both ways: free its state.
    case streamClosed(stream: Int32)
    /// The target sent GOAWAY: streams above `lastStreamID` were not processed.
    case goaway(lastStreamID: Int32, errorCode: UInt32)
}
