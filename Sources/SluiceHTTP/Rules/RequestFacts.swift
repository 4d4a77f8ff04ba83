/// What a request offers to `RuleTable.match`: views into the worker's read buffer, built
/// without allocating. Valid only for the duration of the `match` call.
public struct RequestFacts {
    /// The method token as received.
    public var method: UnsafeRawBufferPointer
    /// The Host header (or `:authority`) without its port, or empty.
    public var host: UnsafeRawBufferPointer
    /// The path without the query, as received (not percent-decoded).
    public var path: UnsafeRawBufferPointer
    /// The raw query string after `?` (without it), or empty.
    public var query: UnsafeRawBufferPointer
    /// Every header field in order; names as received, values without surrounding whitespace
    /// (any that is left is ignored).
    public var headers: UnsafeBufferPointer<(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)>
    /// 4 or 6.
    public var sourceFamily: UInt8
    /// The client address as 16 big-endian bytes in two words (`.0` holds bytes 0...7); an IPv4
    /// address is in the first 4 bytes (the top 32 bits of `.0`). An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) also matches IPv4 ranges.
    public var sourceAddress: (UInt64, UInt64)

    @inlinable
    public init(
        method: UnsafeRawBufferPointer, host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer,
        query: UnsafeRawBufferPointer,
        headers: UnsafeBufferPointer<(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)>,
        sourceFamily: UInt8, sourceAddress: (UInt64, UInt64)
    ) {
        self.method = method
        self.host = host
        self.path = path
        self.query = query
        self.headers = headers
        self.sourceFamily = sourceFamily
        self.sourceAddress = sourceAddress
    }
}
