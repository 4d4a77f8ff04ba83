/// The keys only http listeners have (SPEC §3), with defaults. Durations in nanoseconds,
/// sizes in bytes. (`idle_timeout` and `connect_timeout` are in `ListenerConfig`, as for tcp.)
public struct HTTPListenerSettings: Sendable, Equatable {
    /// Time for a client to send a whole request header (408 after it; stops slowloris).
    public var headerTimeout: UInt64
    /// Time for a target to start its response (504 after it).
    public var responseTimeout: UInt64
    public var desyncMitigation: DesyncMitigationMode
    public var xff: XFFMode
    public var accessLog: AccessLogDestination
    /// Largest request body; 0 = unlimited.
    public var maxRequestBody: UInt64
    /// Request line plus headers (431 beyond).
    public var maxHeaderBytes: Int
    /// Header fields per request (431 beyond).
    public var maxHeaders: Int
    /// Request line (414 beyond).
    public var maxRequestLine: Int
    /// Replay an idempotent request that reached a target when nothing of the response came.
    public var retryIdempotent: Bool
    /// HTTP/2 clients: streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maxConcurrentStreams: Int = HTTPListenerSettings.defaultMaxConcurrentStreams

    public static let defaultHeaderTimeout: UInt64 = 10 * Nanoseconds.second
    public static let defaultResponseTimeout: UInt64 = 60 * Nanoseconds.second
    public static let defaultMaxHeaderBytes = 65_536
    public static let defaultMaxHeaders = 100
    public static let defaultMaxRequestLine = 16_384
    public static let defaultMaxConcurrentStreams = 128
    public static let maxConcurrentStreamsRange = 1...1000

    /// Accepted ranges of the size limits.
    public static let maxHeaderBytesRange = 1024...1_048_576
    public static let maxHeadersRange = 1...1000
    public static let maxRequestLineRange = 256...1_048_576

    public init(headerTimeout: UInt64 = HTTPListenerSettings.defaultHeaderTimeout,
                responseTimeout: UInt64 = HTTPListenerSettings.defaultResponseTimeout,
                desyncMitigation: DesyncMitigationMode = .defensive, xff: XFFMode = .append,
                accessLog: AccessLogDestination = .off, maxRequestBody: UInt64 = 0,
                maxHeaderBytes: Int = HTTPListenerSettings.defaultMaxHeaderBytes,
                maxHeaders: Int = HTTPListenerSettings.defaultMaxHeaders,
                maxRequestLine: Int = HTTPListenerSettings.defaultMaxRequestLine, retryIdempotent: Bool = false) {
        self.headerTimeout = headerTimeout
        self.responseTimeout = responseTimeout
        self.desyncMitigation = desyncMitigation
        self.xff = xff
        self.accessLog = accessLog
        self.maxRequestBody = maxRequestBody
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaders = maxHeaders
        self.maxRequestLine = maxRequestLine
        self.retryIdempotent = retryIdempotent
    }
}

/// `desync_mitigation:` (SPEC §3, after AWS ALB).
public enum DesyncMitigationMode: String, Sendable, Equatable, CaseIterable {
    /// Forward every request; only count and log the classes.
    case monitor
    /// Reject severe requests; forward ambiguous ones, then close both connections.
    case defensive
    /// Forward compliant requests only.
    case strictest
}

/// `xff:` — what happens to `X-Forwarded-For` on the way to the target.
public enum XFFMode: String, Sendable, Equatable, CaseIterable {
    /// Add the client address to what came.
    case append
    /// Pass what came unchanged.
    case preserve
    /// Drop it.
    case remove
}

/// `access_log:` — `off` (the default), `stdout`, or an absolute file path.
public enum AccessLogDestination: Sendable, Equatable {
    case off
    case stdout
    case file(String)
}
