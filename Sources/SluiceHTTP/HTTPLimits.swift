/// Per-listener size limits for a request head (SPEC §3 "Limits and timeouts").
public struct HTTPLimits: Sendable {
    /// Longest accepted request line, without its CRLF; longer answers 414.
    public var maxRequestLine: Int
    /// Longest accepted head (request line + headers + blank line); longer answers 431.
    public var maxHeadBytes: Int
    /// Most header fields accepted; more answers 431. The header table is reserved with this
    /// capacity once, so parsing never grows it.
    public var maxHeaders: Int

    /// Default request line limit: 16 KiB.
    public static let defaultMaxRequestLine = 16 * 1024
    /// Default head limit: 64 KiB.
    public static let defaultMaxHeadBytes = 64 * 1024
    /// Default header count limit: 100.
    public static let defaultMaxHeaders = 100

    public init(
        maxRequestLine: Int = HTTPLimits.defaultMaxRequestLine,
        maxHeadBytes: Int = HTTPLimits.defaultMaxHeadBytes,
        maxHeaders: Int = HTTPLimits.defaultMaxHeaders
    ) {
        precondition(maxRequestLine > 0 && maxHeadBytes > 0 && maxHeaders > 0, "HTTP limits must be positive")
        // Offsets are stored as Int32 in ByteRange.
        precondition(maxHeadBytes < Int(Int32.max) / 2 && maxRequestLine < Int(Int32.max) / 2, "HTTP limits too large")
        self.maxRequestLine = maxRequestLine
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaders = maxHeaders
    }
}
