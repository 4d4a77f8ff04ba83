import COpenSSL

/// `X-Sluice-Signature`: `sha256=` and the lowercase hex HMAC-SHA256 of the body under the secret
/// (OpenSSL's EVP_Q_mac).
public enum Signature {
    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let ok = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBytes { o in
                    EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, k.baseAddress, k.count,
                              d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count,
                              o.baseAddress?.assumingMemoryBound(to: UInt8.self), o.count, &length) != nil
                }
            }
        }
        return ok && length == 32 ? out : nil
    }

    /// The header value for `body` signed with `secret`.
    public static func header(secret: [UInt8], body: [UInt8]) -> String? {
        guard let mac = hmacSHA256(key: secret, data: body) else { return nil }
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for b in mac {
            hex.append(digits[Int(b >> 4)])
            hex.append(digits[Int(b & 0x0F)])
        }
        return "sha256=" + String(decoding: hex, as: UTF8.self)
    }
}
