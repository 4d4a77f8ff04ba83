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
