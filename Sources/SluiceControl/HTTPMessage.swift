/// Minimal HTTP/1.1 for the control plane: request heads with Content-Length bodies, plain responses.
/// Sans-I/O: `HTTPRequestParser` is fed bytes and says what it has; the servers do the reads and writes.

/// A parsed request.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request target as sent, query included (`/v1/x?wait=true`).
    public var target: String
    public var version: String
    /// Header names lowercased, in order.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, target: String, version: String = "HTTP/1.1",
                headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version && a.body == b.body
            && a.headers.map { "\($0.name):\($0.value)" } == b.headers.map { "\($0.name):\($0.value)" }
    }

    /// First value of a header (name case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }

    /// Whether the connection stays open after the answer (HTTP/1.1 default yes, 1.0 default no).
    public var keepAlive: Bool {
        let connection = header("connection")?.lowercased() ?? ""
        if version == "HTTP/1.0" { return connection.contains("keep-alive") }
        return !connection.contains("close")
    }

    /// Path without the query.
    public var path: String {
        if let q = target.firstIndex(of: "?") { return String(target[..<q]) }
        return target
    }

    /// Query parameters, percent-decoded (`+` is a space); later duplicates win.
    public var query: [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = PercentDecoding.decode(String(parts[0]), plusIsSpace: true) ?? String(parts[0])
            let raw = parts.count > 1 ? String(parts[1]) : ""
            result[key] = PercentDecoding.decode(raw, plusIsSpace: true) ?? raw
        }
        return result
    }
}

/// Percent-decoding of URL components.
public enum PercentDecoding {
    /// Decodes `%XX` escapes; nil when an escape is malformed or the result is not UTF-8.
    public static func decode(_ text: String, plusIsSpace: Bool = false) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var bytes = text.utf8.makeIterator()
        while let byte = bytes.next() {
            if byte == UInt8(ascii: "%") {
                guard let hi = bytes.next().flatMap(hexValue), let lo = bytes.next().flatMap(hexValue) else {
                    return nil
                }
                out.append(hi << 4 | lo)
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Incremental request parser over an accumulating buffer. Feed bytes with `append`, then call `next()`
/// until it returns `.needMore`. Pipelined requests are kept in order.
public struct HTTPRequestParser: Sendable {
    /// Largest request head (request line and headers).
    public static let maxHeadBytes = 64 * 1024
    /// Largest request body.
    public static let maxBodyBytes = 1024 * 1024

    public enum Result: Sendable, Equatable {
        case needMore
        case request(HTTPRequest)
        /// The stream cannot continue: answer this error and close.
        case failure(ControlError)
    }

    private var buffer: [UInt8] = []

    public init() {}

    public mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

    /// Bytes held that are not yet part of a returned request.
    public var buffered: Int { buffer.count }

    public mutating func next() -> Result {
        guard let headEnd = Self.findHeadEnd(buffer) else {
            if buffer.count > Self.maxHeadBytes {
                return .failure(.payloadTooLarge("request head exceeds \(Self.maxHeadBytes) bytes"))
            }
            return .needMore
        }
        if headEnd > Self.maxHeadBytes {
            return .failure(.payloadTooLarge("request head exceeds \(Self.maxHeadBytes) bytes"))
        }
        guard let headText = String(validating: buffer[..<headEnd], as: UTF8.self) else {
            return .failure(.badRequest("request head is not UTF-8"))
        }
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
        while lines.last == "" { lines.removeLast() }
        guard let requestLine = lines.first else { return .failure(.badRequest("empty request line")) }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return .failure(.badRequest("malformed request line"))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .failure(.badRequest("malformed header line"))
            }
            let name = line[..<colon].lowercased()
            if name.contains(" ") || name.contains("\t") { return .failure(.badRequest("malformed header name")) }
            let value = line[line.index(after: colon)...].trimmingSpaces()
            headers.append((name, value))
        }
        var request = HTTPRequest(
            method: String(parts[0]), target: String(parts[1]), version: String(parts[2]), headers: headers)
        if let te = request.header("transfer-encoding"), te.lowercased() != "identity" {
            return .failure(.badRequest("chunked request bodies are not supported; send Content-Length"))
        }
        let lengths = headers.filter { $0.name == "content-length" }
        var bodyLength = 0
        if let first = lengths.first {
            // 1*DIGIT (RFC 9110 §8.6): `Int` alone takes "+5"; it fails rather than wraps past `Int.max`.
            guard lengths.allSatisfy({ $0.value == first.value }), !first.value.isEmpty,
                first.value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let n = Int(first.value), n >= 0
            else {
                return .failure(.badRequest("invalid Content-Length"))
            }
            bodyLength = n
        }
        if bodyLength > Self.maxBodyBytes {
            return .failure(.payloadTooLarge("request body exceeds \(Self.maxBodyBytes) bytes"))
        }
        // No overflow: headEnd <= maxHeadBytes and bodyLength <= maxBodyBytes.
        let bodyStart = headEnd + 4
        guard buffer.count >= bodyStart + bodyLength else { return .needMore }
        request.body = Array(buffer[bodyStart..<(bodyStart + bodyLength)])
        buffer.removeFirst(bodyStart + bodyLength)
        return .request(request)
    }

    /// Offset of the `\r\n\r\n` that ends the head.
    private static func findHeadEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4)
        where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// A complete response with a Content-Length body.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var extraHeaders: [String]

    public init(status: Int, contentType: String = "application/json", body: [UInt8], extraHeaders: [String] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.extraHeaders = extraHeaders
    }

    /// Serialized head and body. `close` adds `Connection: close`.
    public func serialized(close: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for header in extraHeaders { head += header + "\r\n" }
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status"
        }
    }
}
