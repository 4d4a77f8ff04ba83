import SluiceHTTP

/// Translates a frontend HTTP/2 request into the HTTP/1.1 request bytes the data plane's
/// HTTP/1 exchange serves unchanged (rules, desync checks, limits, balancing, logs).
///
/// Head: `METHOD path HTTP/1.1`, `host` from `:authority` (a Host field that differs from it is
/// refused), the other fields but connection-specific ones, `cookie` fields joined with "; "
/// (RFC 9113 §8.2.3). Framing: a Content-Length is kept; else a request ending with its head
/// gets `content-length: 0` for POST/PUT/PATCH and nothing otherwise; else the body is chunked.
/// `te: trailers` is passed as it is; the HTTP/1 path may drop it as hop-by-hop (SPEC §3), which
/// matters only to gRPC targets, and those are reached over HTTP/2 (`protocol_version: grpc`).
public struct H2ToHTTP1Request: Sendable {
    /// How body bytes and trailers are written after the head.
    public private(set) var encoder = HTTP1ChunkEncoder(chunked: false)

    public init() {}

    /// Why a head cannot be translated (answer 400 on the stream).
    public enum Failure: Error, Sendable, Equatable {
        case badMethod, badPath, badAuthority, hostMismatch, badHeader, badContentLength, connectNotSupported
    }

    /// Appends the HTTP/1.1 request head to `out`.
    public mutating func encodeHead(_ head: H2RequestHead, endStream: Bool, into out: inout [UInt8]) -> Result<Void, Failure> {
        let method = head.method
        guard H2Bytes.isTokenString(method) else { return .failure(.badMethod) }
        if H2Bytes.equalsExactly(method, "CONNECT") { return .failure(.connectNotSupported) }
        let path = head.path
        guard !path.isEmpty, path.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return .failure(.badPath) }
        guard path.first == 0x2F || (path.count == 1 && path.first == 0x2A && H2Bytes.equalsExactly(method, "OPTIONS"))
        else { return .failure(.badPath) }
        for b in head.authority where b <= 0x20 || b == 0x7F || b == 0x2F || b == 0x3F || b == 0x23 || b == 0x40 {
            return .failure(.badAuthority)
        }

        var contentLength: UInt64?
        var host: ArraySlice<UInt8>?
        var cookieCount = 0
        let headers = head.headers
        for i in headers.indices {
            let f = headers[i]
            guard H2Bytes.isTokenString(f.name), H2Bytes.isSafeValue(f.value) else { return .failure(.badHeader) }
            if H2Bytes.equalsLowercase(f.name, "content-length") {
                guard let v = H2Bytes.decimal(f.value), contentLength == nil || contentLength == v else {
                    return .failure(.badContentLength)
                }
                contentLength = v
            } else if H2Bytes.equalsLowercase(f.name, "host") {
                if let h = host, !h.elementsEqual(f.value) { return .failure(.hostMismatch) }
                host = f.value
            } else if H2Bytes.equalsLowercase(f.name, "cookie") {
                cookieCount &+= 1
            }
        }
        if let host, !head.authority.isEmpty, !H2Bytes.equalsCaseInsensitive(host, head.authority) {
            return .failure(.hostMismatch)
        }
        if head.authority.isEmpty && host == nil { return .failure(.badAuthority) }

        out.append(contentsOf: method)
        out.append(0x20)
        out.append(contentsOf: path)
        H2Translate.appendLiteral(" HTTP/1.1\r\n", to: &out)
        H2Translate.appendField("host".utf8, head.authority.isEmpty ? (host ?? []) : head.authority, to: &out)
        var cookiesWritten = false
        for i in headers.indices {
            let f = headers[i]
            if H2Translate.isConnectionSpecific(f.name) || H2Bytes.equalsLowercase(f.name, "host")
                || H2Bytes.equalsLowercase(f.name, "content-length")
            {
                continue
            }
            if H2Bytes.equalsLowercase(f.name, "cookie") {
                if cookieCount > 1 {
                    if cookiesWritten { continue }
                    cookiesWritten = true
                    H2Translate.appendLiteral("cookie: ", to: &out)
                    var first = true
                    for j in headers.indices {
                        let c = headers[j]
                        guard H2Bytes.equalsLowercase(c.name, "cookie") else { continue }
                        if !first {
                            out.append(0x3B)
                            out.append(0x20)
                        }
                        first = false
                        out.append(contentsOf: c.value)
                    }
                    out.append(0x0D)
                    out.append(0x0A)
                    continue
                }
            }
            H2Translate.appendField(f.name, f.value, to: &out)
        }
        let bodiless = H2Bytes.equalsExactly(method, "GET") || H2Bytes.equalsExactly(method, "HEAD")
        if contentLength == 0 && endStream && bodiless {
            // A GET/HEAD with Content-Length: 0 is classed GetHeadZeroContentLength by the HTTP/1 path.
            encoder = HTTP1ChunkEncoder(chunked: false)
        } else if let contentLength {
            H2Translate.appendLiteral("content-length: ", to: &out)
            H2Bytes.appendDecimal(Int(truncatingIfNeeded: contentLength), to: &out)
            out.append(0x0D)
            out.append(0x0A)
            encoder = HTTP1ChunkEncoder(chunked: false)
        } else if endStream {
            if H2Bytes.equalsExactly(method, "POST") || H2Bytes.equalsExactly(method, "PUT")
                || H2Bytes.equalsExactly(method, "PATCH")
            {
                H2Translate.appendLiteral("content-length: 0\r\n", to: &out)
            }
            encoder = HTTP1ChunkEncoder(chunked: false)
        } else {
            H2Translate.appendLiteral("transfer-encoding: chunked\r\n", to: &out)
            encoder = HTTP1ChunkEncoder(chunked: true)
        }
        out.append(0x0D)
        out.append(0x0A)
        return .success(())
    }

    /// Appends request body bytes (as a chunk when chunked).
    public func encodeBody<C: Collection>(_ bytes: C, into out: inout [UInt8]) where C.Element == UInt8 {
        encoder.encodeChunk(bytes, into: &out)
    }

    /// Appends the end of the body: last-chunk and trailers when chunked, nothing otherwise.
    public func encodeEnd(trailers: H2Headers?, into out: inout [UInt8]) {
        encoder.encodeEnd(trailers: trailers, into: &out)
    }
}

extension H2Bytes {
    static func equalsExactly<C: Collection>(_ a: C, _ s: StaticString) -> Bool where C.Element == UInt8 {
        guard a.count == s.utf8CodeUnitCount else { return false }
        return s.withUTF8Buffer { a.elementsEqual($0) }
    }

    static func equalsCaseInsensitive<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        a.count == b.count && zip(a, b).allSatisfy { lower($0) == lower($1) }
    }
}
