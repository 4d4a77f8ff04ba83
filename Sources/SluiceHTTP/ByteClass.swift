/// The 256-entry byte-class table the parsers consult instead of character comparisons
/// (STYLE 13; `haproxy: src/h1.c` keeps the same kind of table).
///
/// Each entry is a bit set of `ByteClass` flags. The table is built once (a `static let`)
/// and only read afterwards.
@usableFromInline
enum ByteClass {
    /// RFC 9110 `tchar`: the characters of a token (method, header name, transfer-coding).
    static let token: UInt8 = 1 << 0
    /// Visible ASCII, 0x21...0x7E.
    static let vchar: UInt8 = 1 << 1
    /// Optional whitespace: SP or HTAB.
    static let ows: UInt8 = 1 << 2
    /// Control characters 0x00...0x1F and DEL, including HTAB, CR and LF.
    static let ctl: UInt8 = 1 << 3
    /// obs-text, 0x80...0xFF.
    static let obsText: UInt8 = 1 << 4
    /// Decimal digit.
    static let digit: UInt8 = 1 << 5
    /// Hexadecimal digit.
    static let hex: UInt8 = 1 << 6
    /// Bytes that make a header value or request-target *severe* on their own: NUL, CR, LF.
    static let fatal: UInt8 = 1 << 7

    /// The table, indexed by byte value. A raw pointer rather than an array so reading it costs
    /// no retain/release on the hot path; `nonisolated(unsafe)` is sound because the 256 bytes
    /// are written once inside this initialiser and never again (it is never freed).
    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for b in 0..<256 {
            var c: UInt8 = 0
            let u = UInt8(b)
            if (0x21...0x7E).contains(u) { c |= vchar }
            if u == 0x20 || u == 0x09 { c |= ows }
            if u < 0x20 || u == 0x7F { c |= ctl }
            if u >= 0x80 { c |= obsText }
            if (0x30...0x39).contains(u) { c |= digit | hex }
            if (0x41...0x46).contains(u) || (0x61...0x66).contains(u) { c |= hex }
            if u == 0 || u == 0x0D || u == 0x0A { c |= fatal }
            let isAlpha = (0x41...0x5A).contains(u) || (0x61...0x7A).contains(u)
            if isAlpha || (0x30...0x39).contains(u) || "!#$%&'*+-.^_`|~".utf8.contains(u) { c |= token }
            t[b] = c
        }
        return UnsafePointer(t)
    }()

    /// Lower-cases an ASCII letter; every other byte is returned unchanged
    /// (unlike `b | 0x20`, which would turn CR into '-').
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b &- 0x41 < 26 ? b | 0x20 : b
    }
}

extension UnsafeRawBufferPointer {
    /// Whether `count` bytes at `start` equal the lower-case ASCII `literal`, ignoring ASCII case.
    @inline(__always)
    func equalsLowercase(_ start: Int, _ count: Int, _ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let l = literal.utf8Start
        var i = 0
        while i < count {
            if ByteClass.lower(self[start &+ i]) != l[i] { return false }
            i &+= 1
        }
        return true
    }

    /// Whether `count` bytes at `start` equal `literal` exactly (case-sensitive).
    @inline(__always)
    func equalsExactly(_ start: Int, _ count: Int, _ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let l = literal.utf8Start
        var i = 0
        while i < count {
            if self[start &+ i] != l[i] { return false }
            i &+= 1
        }
        return true
    }
}
