/// Shared rules of the HTTP/1.1 ⇄ HTTP/2 translation.
enum H2Translate {
    /// RFC 9113 §8.2.2: fields that must not appear in HTTP/2 (and that the translators re-derive).
    static func isConnectionSpecific<C: Collection>(_ name: C) -> Bool where C.Element == UInt8 {
        switch name.count {
        case 7: return H2Bytes.equalsLowercase(name, "upgrade")
        case 10: return H2Bytes.equalsLowercase(name, "connection") || H2Bytes.equalsLowercase(name, "keep-alive")
        case 16: return H2Bytes.equalsLowercase(name, "proxy-connection")
        case 17: return H2Bytes.equalsLowercase(name, "transfer-encoding")
        case 13: return H2Bytes.equalsLowercase(name, "http2-settings")
        default: return false
        }
    }
}

extension H2Translate {
    /// Fields that never travel in a trailer section: framing, routing and connection fields
    /// (RFC 9110 §6.5.1).
    static func allowedInTrailers<C: Collection>(_ name: C) -> Bool where C.Element == UInt8 {
        if isConnectionSpecific(name) { return false }
        switch name.count {
        case 2: return !H2Bytes.equalsLowercase(name, "te")
        case 4: return !H2Bytes.equalsLowercase(name, "host")
        case 7: return !H2Bytes.equalsLowercase(name, "trailer")
        case 14: return !H2Bytes.equalsLowercase(name, "content-length")
        default: return true
        }
    }

    /// Writes `name: value\r\n` (value CR/LF/NUL turned into SP, as `HTTPWriter` does for obs-fold).
    static func appendField<N: Collection, V: Collection>(_ name: N, _ value: V, to out: inout [UInt8])
    where N.Element == UInt8, V.Element == UInt8 {
        out.append(contentsOf: name)
        out.append(0x3A)
        out.append(0x20)
        for b in value { out.append(b == 0x0D || b == 0x0A || b == 0 ? 0x20 : b) }
        out.append(0x0D)
        out.append(0x0A)
    }

    static func appendLiteral(_ s: StaticString, to out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }
}

/// The chunked-encoding writer of the h2 → HTTP/1.1 translators: body bytes as chunks, then the
/// last-chunk with an optional trailer section (gRPC trailers travel inside HTTP/1.1 this way).
public struct HTTP1ChunkEncoder: Sendable {
    /// Whether the message is chunked (else body bytes pass as they are and trailers are dropped).
    public var chunked: Bool

    public init(chunked: Bool) { self.chunked = chunked }

    /// Appends `bytes` as one chunk (nothing for an empty buffer, which would end the body).
    public func encodeChunk<C: Collection>(_ bytes: C, into out: inout [UInt8]) where C.Element == UInt8 {
        if !chunked {
            out.append(contentsOf: bytes)
            return
        }
        if bytes.isEmpty { return }
        H2Bytes.appendHex(bytes.count, to: &out)
        out.append(0x0D)
        out.append(0x0A)
        out.append(contentsOf: bytes)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Appends the last-chunk and the trailer section (fields not allowed in trailers left out).
    public func encodeEnd(trailers: H2Headers?, into out: inout [UInt8]) {
        guard chunked else { return }
        out.append(0x30)
        out.append(0x0D)
        out.append(0x0A)
        if let trailers {
            for i in trailers.indices {
                let f = trailers[i]
                guard H2Bytes.isTokenString(f.name), H2Translate.allowedInTrailers(f.name) else { continue }
                H2Translate.appendField(f.name, f.value, to: &out)
            }
        }
        out.append(0x0D)
        out.append(0x0A)
    }
}
