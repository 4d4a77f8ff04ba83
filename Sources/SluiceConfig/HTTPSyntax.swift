/// Character classes of HTTP (RFC 9110) used to validate names in the config.
enum HTTPSyntax {
    /// A `token`: one or more of ALPHA, DIGIT and ``!#$%&'*+-.^_`|~`` (method, header and cookie
    /// names).
    static func isToken<S: StringProtocol>(_ text: S) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Text that may stand in a header value or query: no control bytes except tab.
    static func isFieldText(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
