/// A sans-I/O decoder for one HTTP/1.1 response: feed it the bytes read from the socket, in any
/// split, and it hands back the head once and then body bytes, with chunked transfer coding
/// removed.
///
/// Bodies are framed by `Transfer-Encoding: chunked`, by `Content-Length`, or (neither present)
/// by the end of the connection, as RFC 9112 §6.3 says. Interim `1xx` heads are skipped. Limits
/// are named constants: a control-socket answer has no business with a 64 KiB head.
struct HTTPResponseDecoder {
    /// The status line and headers. Header names are lowercased.
    struct Head: Equatable {
        var status: Int
        var headers: [(name: String, value: String)]

        func value(_ name: String) -> String? {
            headers.first { $0.name == name }?.value
        }

        static func == (a: Head, b: Head) -> Bool {
            a.status == b.status && a.headers.elementsEqual(b.headers) { $0 == $1 }
        }
    }

    /// What one `feed` produced.
    enum Event: Equatable {
        case head(Head)
        case body([UInt8])
        case end
    }

    enum DecodeError: Error, Equatable {
        case malformed(String)
        case tooLarge(String)
        /// The connection ended before the response did.
        case truncated
    }

    static let maxHeadBytes = 64 * 1024
    static let maxChunkLineBytes = 1024

    private enum Framing {
        case length(remaining: Int)
        case chunked(ChunkState)
        case untilClose
    }

    private enum ChunkState {
        case size
        case data(remaining: Int)
        case dataEnd  // CRLF after chunk data
        case trailers
    }

    private enum State {
        case head
        case body(Framing)
        case done
    }

    private var state: State = .head
    private var buffer: [UInt8] = []
    /// Set by the caller for `HEAD` requests and the like; a control client never sends them.
    private let bodyless: Bool

    init(bodyless: Bool = false) {
        self.bodyless = bodyless
    }

    var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Consumes `bytes` and returns what they completed, in order.
    mutating func feed(_ bytes: some Collection<UInt8>) throws(DecodeError) -> [Event] {
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        while try step(into: &events) {}
        return events
    }

    /// Signals the end of the connection: completes an until-close body or reports truncation.
    mutating func finish() throws(DecodeError) -> [Event] {
        switch state {
        case .done:
            return []
        case .body(.untilClose):
            state = .done
            return [.end]
        default:
            throw .truncated
        }
    }

    /// One unit of progress; false when more input is needed (or the response is complete).
    private mutating func step(into events: inout [Event]) throws(DecodeError) -> Bool {
        switch state {
        case .done:
            return false
        case .head:
            guard let end = Self.find([13, 10, 13, 10], in: buffer) else {
                if buffer.count > Self.maxHeadBytes { throw .tooLarge("response head over \(Self.maxHeadBytes) bytes") }
                return false
            }
            let head = try Self.parseHead(buffer[..<end])
            buffer.removeFirst(end + 4)
            if head.status >= 100 && head.status < 200 { return true }  // interim answer; the real one follows
            events.append(.head(head))
            if bodyless || head.status == 204 || head.status == 304 {
                state = .done
                events.append(.end)
                return false
            }
            if let te = head.value("transfer-encoding") {
                guard te.lowercased().split(separator: ",").last?.trimmingSpaces == "chunked" else {
                    throw .malformed("unsupported transfer-encoding \"\(te)\"")
                }
                state = .body(.chunked(.size))
            } else if let cl = head.value("content-length") {
                // 1*DIGIT only (no sign); `Int` fails rather than wraps on a value past `Int.max`.
                guard !cl.isEmpty, cl.utf8.allSatisfy(Self.isDigit), let length = Int(cl), length >= 0
                else { throw .malformed("bad content-length \"\(cl.prefix(64))\"") }
                if length == 0 {
                    state = .done
                    events.append(.end)
                    return false
                }
                state = .body(.length(remaining: length))
            } else {
                state = .body(.untilClose)
            }
            return true
        case .body(.untilClose):
            guard !buffer.isEmpty else { return false }
            events.append(.body(buffer))
            buffer.removeAll(keepingCapacity: true)
            return false
        case .body(.length(let remaining)):
            guard !buffer.isEmpty else { return false }
            let take = min(remaining, buffer.count)
            events.append(.body(Array(buffer[..<take])))
            buffer.removeFirst(take)
            if take == remaining {
                state = .done
                events.append(.end)
                return false
            }
            state = .body(.length(remaining: remaining - take))
            return false
        case .body(.chunked(let chunk)):
            return try stepChunked(chunk, into: &events)
        }
    }

    private mutating func stepChunked(_ chunk: ChunkState, into events: inout [Event]) throws(DecodeError) -> Bool {
        switch chunk {
        case .size:
            guard let lineEnd = Self.find([13, 10], in: buffer) else {
                if buffer.count > Self.maxChunkLineBytes { throw .tooLarge("chunk size line too long") }
                return false
            }
            let line = buffer[..<lineEnd]
            // Chunk extensions (";name=value") are allowed and ignored.
            let sizeText = line.prefix { $0 != UInt8(ascii: ";") }
            // `Int(_:radix:)` alone would take "-1" and "+1": the size must be 1*HEXDIG (RFC 9112 §7.1).
            // At most 15 hex digits, so the value is below 2^60 and fits `Int` with room for arithmetic.
            let text = String(decoding: sizeText, as: UTF8.self).trimmingSpaces
            guard !text.isEmpty, text.utf8.count <= 15, text.utf8.allSatisfy(Self.isHexDigit),
                let size = Int(text, radix: 16), size >= 0
            else {
                throw .malformed("bad chunk size \"\(String(decoding: line.prefix(64), as: UTF8.self))\"")
            }
            buffer.removeFirst(lineEnd + 2)
            state = .body(.chunked(size == 0 ? .trailers : .data(remaining: size)))
            return true
        case .data(let remaining):
            guard !buffer.isEmpty else { return false }
            let take = min(remaining, buffer.count)
            events.append(.body(Array(buffer[..<take])))
            buffer.removeFirst(take)
            state = .body(.chunked(take == remaining ? .dataEnd : .data(remaining: remaining - take)))
            return take == remaining
        case .dataEnd:
            guard buffer.count >= 2 else { return false }
            guard buffer[0] == 13, buffer[1] == 10 else { throw .malformed("chunk data not followed by CRLF") }
            buffer.removeFirst(2)
            state = .body(.chunked(.size))
            return true
        case .trailers:
            // Trailer fields end with an empty line; they are read and dropped.
            guard let lineEnd = Self.find([13, 10], in: buffer) else {
                if buffer.count > Self.maxHeadBytes { throw .tooLarge("trailers over \(Self.maxHeadBytes) bytes") }
                return false
            }
            buffer.removeFirst(lineEnd + 2)
            if lineEnd == 0 {
                state = .done
                events.append(.end)
                return false
            }
            return true
        }
    }

    private static func parseHead(_ bytes: ArraySlice<UInt8>) throws(DecodeError) -> Head {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        guard let statusLine = lines.popFirst() else { throw .malformed("empty response head") }
        // "HTTP/1.1 200 OK": the reason phrase is optional.
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].utf8.count == 3,
            parts[1].utf8.allSatisfy(Self.isDigit), let status = Int(parts[1]), status >= 100, status <= 599
        else { throw .malformed("bad status line \"\(statusLine.prefix(64))\"") }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw .malformed("bad header line \"\(line.prefix(64))\"")
            }
            let name = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingSpaces
            headers.append((name, value))
        }
        return Head(status: status, headers: headers)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    /// Index of the first occurrence of `needle` in `haystack`.
    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
