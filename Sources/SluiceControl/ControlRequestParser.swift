// Guarded so Fuzz/ControlRequestFuzz can compile this file in one module with SluiceHTTP's sources.
#if canImport(SluiceHTTP)
    internal import SluiceHTTP
#endif

/// Makes control API requests from the bytes of a connection, with SluiceHTTP's
/// `HTTPRequestParser` (the data path's fuzzed, in-place parser) for the head. Feed bytes with
/// `append`, then call `next()` until it returns `.needMore`; pipelined requests come out in order.
///
/// Policy (the control API has no reason to take what a strict proxy would not forward):
/// * a head the parser classes `severe` or `ambiguous` (RFC 9112 violations, smuggling shapes,
///   bare LF, lines without a colon, obs-fold) is refused with 400, except the two ambiguous
///   shapes the control API always took (see `tolerated`);
/// * bodies are framed by Content-Length only: a request with Transfer-Encoding is refused with
///   400 ("send Content-Length") rather than decoded — every client of this API (sluicectl,
///   curl with `--data`) sends a length, and refusing keeps one framing to get right;
/// * a head over `maxHeadBytes` (request line included) or a body over `maxBodyBytes` is 413.
public struct ControlRequestParser: Sendable {
    /// Largest request head (request line and headers).
    public static let maxHeadBytes = 64 * 1024
    /// Largest request body.
    public static let maxBodyBytes = 1024 * 1024
    /// Most header fields in a head.
    public static let maxHeaders = 100

    public enum Result: Sendable, Equatable {
        case needMore
        case request(HTTPRequest)
        /// The stream cannot continue: answer this error and close.
        case failure(ControlError)
    }

    private static let limits = HTTPLimits(
        maxRequestLine: maxHeadBytes, maxHeadBytes: maxHeadBytes, maxHeaders: maxHeaders)
    private static let headTooLarge = ControlError.payloadTooLarge("request head exceeds \(maxHeadBytes) bytes")
    private static let bodyTooLarge = ControlError.payloadTooLarge("request body exceeds \(maxBodyBytes) bytes")

    private var head = HTTPRequestParser(limits: ControlRequestParser.limits)
    /// Bytes not yet part of a returned request; the head being parsed starts at index 0.
    private var buffer: [UInt8] = []
    /// Once a failure is returned, the stream is over: the same failure again.
    private var failed: ControlError?

    public init() {}

    public mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

    /// Bytes held that are not yet part of a returned request.
    public var buffered: Int { buffer.count }

    public mutating func next() -> Result {
        if let failed { return .failure(failed) }
        let result = buffer.withUnsafeBytes { head.parse($0) }
        switch result {
        case .needMore:
            return .needMore
        case .error(let e):
            return fail(e.status == 414 || e.status == 431 ? Self.headTooLarge : .badRequest("malformed request head (\(e.reason.code))"))
        case .complete:
            break
        }
        let h = head.head
        if h.verdict.klass == .severe || (h.verdict.klass == .ambiguous && !Self.tolerated(h.verdict.reason)) {
            return fail(.badRequest("malformed request head (\(h.verdict.reason.code))"))
        }
        let bodyLength: Int
        switch h.framing {
        case .none:
            bodyLength = 0
        case .contentLength(let n):
            // n < 10^18 (the parser takes at most 18 digits); compared before any arithmetic.
            guard n <= UInt64(Self.maxBodyBytes) else { return fail(Self.bodyTooLarge) }
            bodyLength = Int(n)
        case .chunked, .untilClose:
            return fail(.badRequest("chunked request bodies are not supported; send Content-Length"))
        }
        // No overflow: headLength ≤ maxHeadBytes and bodyLength ≤ maxBodyBytes.
        let end = h.headLength + bodyLength
        guard buffer.count >= end else { return .needMore }
        guard let request = buffer.withUnsafeBytes({ Self.request(h, $0, bodyStart: h.headLength, end: end) }) else {
            return fail(.badRequest("request head is not UTF-8"))
        }
        buffer.removeFirst(end)
        head.reset()
        return .request(request)
    }

    /// Ambiguous for a proxy, harmless here, and taken before: the same Content-Length twice, and
    /// a body on GET/HEAD (read by its length and ignored). Exact: the verdict keeps the first
    /// reason of its class, and these are the last checks the parser makes.
    private static func tolerated(_ reason: DesyncReason) -> Bool {
        reason == .duplicateContentLength || reason == .undefinedContentLengthSemantics
    }

    private mutating func fail(_ error: ControlError) -> Result {
        failed = error
        return .failure(error)
    }

    /// The router's view of a parsed head: strings (header names lowercased) and the body bytes.
    private static func request(_ h: HTTPRequestHead, _ p: UnsafeRawBufferPointer, bodyStart: Int, end: Int) -> HTTPRequest? {
        func text(_ r: ByteRange) -> String? {
            String(validating: UnsafeRawBufferPointer(rebasing: p[Int(r.start)..<r.end]), as: UTF8.self)
        }
        guard let method = text(h.method), let target = text(h.target) else { return nil }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(h.headers.count)
        for field in h.headers {
            guard let name = text(field.name), let value = text(field.value) else { return nil }
            headers.append((name.lowercased(), value))
        }
        return HTTPRequest(
            method: method, target: target, version: h.versionMinor == 0 ? "HTTP/1.0" : "HTTP/1.1",
            headers: headers, body: Array(p[bodyStart..<end]))
    }
}
