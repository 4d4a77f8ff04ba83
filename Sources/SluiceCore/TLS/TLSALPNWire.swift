/// ALPN protocol lists: names checked for the wire's 1…255-byte limit.
enum TLSALPNWire {
    static func protocols(_ names: [String]) throws(TLSSetupError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for name in names {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSSetupError(file: nil, message: "ALPN protocol name \"\(name.prefix(300))\" must be 1 to 255 bytes")
            }
            out.append(bytes)
        }
        return out
    }

    /// The wire form (each name prefixed by its length), for `SSL_CTX_set_alpn_protos`.
    static func wire(_ names: [String]) throws(TLSSetupError) -> [UInt8] {
        var out: [UInt8] = []
        for p in try protocols(names) {
            out.append(UInt8(truncatingIfNeeded: p.count))
            out += p
        }
        return out
    }
}
