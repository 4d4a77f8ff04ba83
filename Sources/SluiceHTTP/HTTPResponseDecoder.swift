/// A sans-I/O decoder for one HTTP/1.1 response: feed it the bytes read from the socket, in any
/// split, and it hands back the head once and then body bytes, with chunked transfer coding
/// removed.
///
/// The head is parsed by SluiceHTTP's `HTTPResponseParser` and chunked framing is followed by its
/// `ChunkedBodyScanner` (the data path's fuzzed codec), so sluicectl and the proxy read HTTP/1
/// the same way. Bodies are framed by `Transfer-Encoding: chunked`, by `Content-Length`, or
/// (neither present) by the end of the connection, as RFC 9112 §6.3 says; a Transfer-Encoding
/// that does not end in chunked is refused. Interim `1xx` heads are skipped. Limits are named
/// constants: a control-socket or etcd answer has no business with a 64 KiB head. Used by
/// sluicectl and the etcd client (SluiceRegistry).
public struct HTTPResponseDecoder {
    /// The status line and headers. Header names are lowercased.
    public struct Head: Equatable {
        public var status: Int
        public var headers: [(name: String, value: String)]

        public func value(_ name: String) -> String? {
            headers.first { $0.name == name }?.value
        }

        public static func == (a: Head, b: Head) -> Bool {
            a.status == b.status && a.headers.elementsEqual(b.headers) { $0 == $1 }
        }
    }

    /// What one `feed` produced.
    public enum Event: Equatable {
        case head(Head)
        case body([UInt8])
        case end
    }

    public enum DecodeError: Error, Equatable {
        case malformed(String)
        case tooLarge(String)
        /// The connection ended before the response did.
        case truncated
    }

    public static let maxHeadBytes = 64 * 1024
    /// Most header fields in a head.
    public static let maxHeaders = 256
    /// Longest chunk-size line and largest trailer section: `ChunkedBodyScanner`'s limits.
    public static let maxChunkLineBytes = ChunkedBodyScanner.maxSizeLine
    /// Largest run of chunk data handed to the scanner at once (see `chunked`).
    public static let maxDataRun = 1 << 20

    private static let limits = HTTPLimits(maxRequestLine: maxHeadBytes, maxHeadBytes: maxHeadBytes, maxHeaders: maxHeaders)

    private enum State {
        case head
        case length(remaining: Int)
        case chunked
        case untilClose
        case done
    }

    private var state: State = .head
    private var parser = HTTPResponseParser(limits: HTTPResponseDecoder.limits)
    private var scanner = ChunkedBodyScanner()
    /// The head being parsed (from its first byte); empty once the head is done.
    private var buffer: [UInt8] = []
    /// Set by the caller for `HEAD` requests and the like; a control client never sends them.
    private let bodyless: Bool

    public init(bodyless: Bool = false) {
        self.bodyless = bodyless
    }

    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Consumes `bytes` and returns what they completed, in order.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(DecodeError) -> [Event] {
        var events: [Event] = []
        switch state {
        case .done:
            break
        case .head:
            buffer.append(contentsOf: bytes)
            guard let bodyStart = try heads(into: &events) else { return events }
            let rest = Array(buffer[bodyStart...])
            buffer = []
            try body(rest[...], into: &events)
        case .length, .chunked, .untilClose:
            try body(Array(bytes)[...], into: &events)
        }
        return events
    }

    /// Signals the end of the connection: completes an until-close body or reports truncation.
    public mutating func finish() throws(DecodeError) -> [Event] {
        switch state {
        case .done:
            return []
        case .untilClose:
            state = .done
            return [.end]
        default:
            throw .truncated
        }
    }

    /// Parses heads in `buffer` (skipping interim ones); on the final head appends it, sets the
    /// body state and returns the offset of the body's first byte; nil when more is needed.
    private mutating func heads(into events: inout [Event]) throws(DecodeError) -> Int? {
        var start = 0
        while true {
            let from = start
            let result = buffer.withUnsafeBytes { raw in
                parser.parse(UnsafeRawBufferPointer(rebasing: raw[from...]), requestMethod: bodyless ? .head : .get)
            }
            switch result {
            case .needMore:
                if start > 0 {
                    // Interim heads are done with: keep only the head being parsed.
                    buffer.removeFirst(start)
                    parser.reset()
                    _ = buffer.withUnsafeBytes { parser.parse($0, requestMethod: bodyless ? .head : .get) }
                }
                return nil
            case .error:
                if buffer.count &- start > Self.maxHeadBytes {
                    throw .tooLarge("response head over \(Self.maxHeadBytes) bytes")
                }
                throw .malformed("bad response head \"\(Self.preview(buffer[from...]))\"")
            case .complete:
                break
            }
            let h = parser.head
            // headLength ≤ the bytes parsed, so start stays ≤ buffer.count.
            let end = start + h.headLength
            guard h.status <= 599 else { throw .malformed("bad status line \"\(Self.preview(buffer[from...]))\"") }
            if h.status < 200 {
                start = end  // interim answer; the real one follows
                parser.reset()
                continue
            }
            let head = buffer.withUnsafeBytes { Self.head(h, UnsafeRawBufferPointer(rebasing: $0[from...])) }
            events.append(.head(head))
            if bodyless || h.status == 204 || h.status == 304 {
                finishBody(into: &events)
                return end
            }
            switch h.framing {
            case .none:
                finishBody(into: &events)
            case .contentLength(let n):
                // n < 10^18 (the parser takes at most 18 digits), so it fits `Int`.
                guard let length = Int(exactly: n) else { throw .malformed("bad content-length") }
                state = .length(remaining: length)
            case .chunked:
                state = .chunked
            case .untilClose:
                if let te = head.value("transfer-encoding") {
                    throw .malformed("unsupported transfer-encoding \"\(te.prefix(64))\"")
                }
                state = .untilClose
            }
            return end
        }
    }

    private mutating func finishBody(into events: inout [Event]) {
        state = .done
        events.append(.end)
    }

    /// Body bytes after the head, for the current framing.
    private mutating func body(_ input: ArraySlice<UInt8>, into events: inout [Event]) throws(DecodeError) {
        switch state {
        case .head, .done:
            return
        case .untilClose:
            if !input.isEmpty { events.append(.body(Array(input))) }
        case .length(let remaining):
            let take = min(remaining, input.count)
            if take > 0 { events.append(.body(Array(input.prefix(take)))) }
            if take == remaining {
                finishBody(into: &events)
            } else {
                state = .length(remaining: remaining - take)
            }
        case .chunked:
            try chunked(input, into: &events)
        }
    }

    /// Chunked body: `ChunkedBodyScanner` validates the framing and finds the end; the bytes it
    /// counts as chunk data (`dataBytes` grows by them) are the body. The scanner is a value, so a
    /// run is tried on a copy: if every byte of it was data the copy is kept and the run doubles,
    /// otherwise the bytes go one at a time until data starts again. Framing costs one call per
    /// byte, data about log2(chunk size) calls per chunk.
    private mutating func chunked(_ input: ArraySlice<UInt8>, into events: inout [Event]) throws(DecodeError) {
        var out: [UInt8] = []
        var i = input.startIndex
        var run = 1
        while i < input.endIndex {
            let k = min(run, input.endIndex - i)
            var probe = scanner
            let before = probe.dataBytes
            let result = input[i..<(i + k)].withUnsafeBytes { probe.scan($0) }
            // The scanner counts at most the k bytes it was given: no wrap.
            let data = probe.dataBytes &- before
            if result == .consumed(k) && data == UInt64(k) {
                scanner = probe
                out.append(contentsOf: input[i..<(i + k)])
                i += k
                run = min(run * 2, Self.maxDataRun)
                continue
            }
            if k > 1 {
                run = 1
                continue
            }
            scanner = probe
            i += 1
            switch result {
            case .error:
                throw .malformed("bad chunk size, chunk framing or trailer")
            case .finished:
                if !out.isEmpty { events.append(.body(out)) }
                finishBody(into: &events)
                return
            case .consumed:
                continue
            }
        }
        if !out.isEmpty { events.append(.body(out)) }
    }

    /// Strings for the caller: names lowercased, values as sent (trimmed by the parser).
    private static func head(_ h: HTTPResponseHead, _ p: UnsafeRawBufferPointer) -> Head {
        func text(_ r: ByteRange) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: p[Int(r.start)..<r.end]), as: UTF8.self)
        }
        return Head(status: h.status, headers: h.headers.map { (text($0.name).lowercased(), text($0.value)) })
    }

    /// The first line of `bytes`, at most 64 bytes, for error messages.
    private static func preview(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(64).prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
    }
}
