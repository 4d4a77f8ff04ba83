import SluiceHTTP

/// Translates a target's HTTP/2 response (`H2ClientSession` events) into the HTTP/1.1 response
/// bytes the data plane's exchange reads from a target. A Content-Length is kept; without one
/// the body is chunked so trailers (gRPC) travel in the trailer section; a response that ends
/// with its head gets `content-length: 0` (none for 1xx/204/304, and a HEAD keeps what came).
public struct H2ToHTTP1Response: Sendable {
    public private(set) var encoder = HTTP1ChunkEncoder(chunked: false)
    public var requestMethod: HTTPMethod

    public init(requestMethod: HTTPMethod) { self.requestMethod = requestMethod }

    /// Appends the status line and fields; false for a status outside 100...599 or a field that
    /// cannot be written on an HTTP/1.1 line.
    public mutating func encodeHead(status: Int, headers: H2Headers, endStream: Bool, into out: inout [UInt8]) -> Bool {
        guard status >= 100, status <= 599 else { return false }
        var contentLength: UInt64?
        for i in headers.indices {
            let f = headers[i]
            guard H2Bytes.isTokenString(f.name), H2Bytes.isSafeValue(f.value) else { return false }
            if H2Bytes.equalsLowercase(f.name, "content-length") {
                guard let v = H2Bytes.decimal(f.value), contentLength == nil || contentLength == v else { return false }
                contentLength = v
            }
        }
        H2Translate.appendLiteral("HTTP/1.1 ", to: &out)
        H2Bytes.appendDecimal(status, to: &out)
        out.append(0x20)
        Self.reason(status).withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(0x0D)
        out.append(0x0A)
        for i in headers.indices {
            let f = headers[i]
            if H2Translate.isConnectionSpecific(f.name) || H2Bytes.equalsLowercase(f.name, "content-length") { continue }
            H2Translate.appendField(f.name, f.value, to: &out)
        }
        let noBody = status < 200 || status == 204 || status == 304
        encoder = HTTP1ChunkEncoder(chunked: false)
        if let contentLength {
            if status != 204 && status >= 200 {
                H2Translate.appendLiteral("content-length: ", to: &out)
                H2Bytes.appendDecimal(Int(truncatingIfNeeded: contentLength), to: &out)
                out.append(0x0D)
                out.append(0x0A)
            }
        } else if noBody || requestMethod == .head {
            // No framing field: the message has no body.
        } else if endStream {
            H2Translate.appendLiteral("content-length: 0\r\n", to: &out)
        } else {
            H2Translate.appendLiteral("transfer-encoding: chunked\r\n", to: &out)
            encoder = HTTP1ChunkEncoder(chunked: true)
        }
        out.append(0x0D)
        out.append(0x0A)
        return true
    }

    public func encodeBody<C: Collection>(_ bytes: C, into out: inout [UInt8]) where C.Element == UInt8 {
        encoder.encodeChunk(bytes, into: &out)
    }

    public func encodeEnd(trailers: H2Headers?, into out: inout [UInt8]) {
        encoder.encodeEnd(trailers: trailers, into: &out)
    }

    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
