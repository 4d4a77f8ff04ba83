internal import COpenSSL

extension TLSPeerCertificate {
    /// Describes an `X509` (not retained past the call). Nil when OpenSSL cannot print it.
    init?(x509 cert: OpaquePointer) {
        guard let subject = Self.printed({ bio in
                  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, csluice_XN_FLAG_RFC2253()) >= 0
              }),
              let serial = Self.serialHex(cert),
              let pem = Self.printed({ bio in PEM_write_bio_X509(bio, cert) == 1 })
        else {
            ERR_clear_error()
            return nil
        }
        self.init(subject: subject, serialHex: serial, pemPercentEncoded: Self.percentEncoded(pem.utf8))
    }

    /// What `body` writes into a memory BIO, as text.
    private static func printed(_ body: (OpaquePointer) -> Bool) -> String? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard body(bio) else { return nil }
        let pending = BIO_ctrl_pending(bio)
        var bytes = [UInt8](repeating: 0, count: pending)
        let n = BIO_read(bio, &bytes, Int32(clamping: pending))
        guard n >= 0 else { return nil }
        return String(decoding: bytes.prefix(Int(truncatingIfNeeded: n)), as: UTF8.self)
    }

    /// The serial as OpenSSL's `BN_bn2hex` writes it: upper-case hex, no separators.
    private static func serialHex(_ cert: OpaquePointer) -> String? {
        guard let serial = X509_get_serialNumber(cert), let bn = ASN1_INTEGER_to_BN(serial, nil) else { return nil }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { return nil }
        defer { csluice_OPENSSL_free(hex) }
        return String(cString: hex)
    }

    /// RFC 3986 percent-encoding: unreserved characters (`A-Z a-z 0-9 - . _ ~`) stay, every
    /// other byte becomes `%XX` (upper-case hex).
    static func percentEncoded(_ bytes: some Sequence<UInt8>) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 3 / 2)
        for b in bytes {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.append(b)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(truncatingIfNeeded: b >> 4)])
                out.append(hex[Int(truncatingIfNeeded: b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
