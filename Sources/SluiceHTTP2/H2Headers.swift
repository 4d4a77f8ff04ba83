/// One header field inside an `H2Headers` storage: (offset, length) pairs, so a block of fields
/// costs no allocation per field (STYLE 13).
public struct H2Field: Sendable, Equatable {
    public var nameStart: Int32
    public var nameCount: Int32
    public var valueStart: Int32
    public var valueCount: Int32
}

/// A list of header fields whose bytes live in one byte array. The sessions hand out views whose
/// `storage` and `fields` share the session's arena (a retain, not a copy): read them before the
/// next `clearEvents()`; a view kept longer stays valid but makes the arena copy itself once.
/// Names are as received (lower case on HTTP/2); values are raw bytes.
public struct H2Headers: Sendable, RandomAccessCollection {
    public typealias Index = Int

    /// The bytes the fields point into.
    public private(set) var storage: [UInt8]
    /// The fields in order.
    public private(set) var fields: ArraySlice<H2Field>

    /// An empty, owned list.
    public init() {
        storage = []
        fields = []
    }

    /// An owned list from string pairs (tests, health checks, canned responses).
    public init(_ pairs: [(String, String)]) {
        self.init()
        for (n, v) in pairs { append(name: n, value: v) }
    }

    init(storage: [UInt8], fields: ArraySlice<H2Field>) {
        self.storage = storage
        self.fields = fields
    }

    public var startIndex: Int { fields.startIndex }
    public var endIndex: Int { fields.endIndex }

    /// The field at `i`: slices of `storage`.
    public subscript(i: Int) -> (name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        let f = fields[i]
        let ns = Int(truncatingIfNeeded: f.nameStart)
        let vs = Int(truncatingIfNeeded: f.valueStart)
        return (storage[ns..<(ns &+ Int(truncatingIfNeeded: f.nameCount))],
                storage[vs..<(vs &+ Int(truncatingIfNeeded: f.valueCount))])
    }

    /// Appends a field (copies the bytes). False when the storage would pass `Int32.max`.
    @discardableResult
    public mutating func append<N: Collection, V: Collection>(name: N, value: V) -> Bool
    where N.Element == UInt8, V.Element == UInt8 {
        guard storage.count &+ name.count &+ value.count < Int(Int32.max) else { return false }
        let ns = Int32(truncatingIfNeeded: storage.count)
        storage.append(contentsOf: name)
        let vs = Int32(truncatingIfNeeded: storage.count)
        storage.append(contentsOf: value)
        fields.append(H2Field(
            nameStart: ns, nameCount: Int32(truncatingIfNeeded: name.count),
            valueStart: vs, valueCount: Int32(truncatingIfNeeded: value.count)))
        return true
    }

    /// Empties the list, keeping its storage: a list reused per stream allocates nothing once grown.
    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
    }

    /// Appends a response field from HTTP/1 bytes: the name lower-cased, CR and LF in the value
    /// turned into SP. False when the storage would pass `Int32.max`.
    @discardableResult
    mutating func appendTranslated(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard storage.count &+ name.count &+ value.count < Int(Int32.max) else { return false }
        let ns = storage.count
        let vs = ns &+ name.count
        let total = name.count &+ value.count
        storage.append(contentsOf: repeatElement(0, count: total))
        storage.withUnsafeMutableBufferPointer { dst in
            guard let d = dst.baseAddress else { return }
            var i = ns
            for b in name {
                d[i] = H2Bytes.lower(b)
                i &+= 1
            }
            for b in value {
                d[i] = b == 0x0D || b == 0x0A ? 0x20 : b
                i &+= 1
            }
        }
        fields.append(H2Field(
            nameStart: Int32(truncatingIfNeeded: ns), nameCount: Int32(truncatingIfNeeded: name.count),
            valueStart: Int32(truncatingIfNeeded: vs), valueCount: Int32(truncatingIfNeeded: value.count)))
        return true
    }

    /// Whether the first field named `name` (lower-case ASCII; compared case-insensitively) has a
    /// value beginning with `prefix` (compared exactly). Allocates nothing.
    public func firstValue(_ name: StaticString, hasPrefix prefix: StaticString) -> Bool {
        storage.withUnsafeBufferPointer { st -> Bool in
            guard let sb = st.baseAddress else { return false }
            for f in fields {
                let nStart = Int(truncatingIfNeeded: f.nameStart)
                let nCount = Int(truncatingIfNeeded: f.nameCount)
                guard nStart >= 0, nStart &+ nCount <= st.count,
                    H2Bytes.equalsLowercase(UnsafeBufferPointer(start: sb + nStart, count: nCount), name)
                else { continue }
                let vStart = Int(truncatingIfNeeded: f.valueStart)
                let vCount = Int(truncatingIfNeeded: f.valueCount)
                guard vStart >= 0, vStart &+ vCount <= st.count, vCount >= prefix.utf8CodeUnitCount else { return false }
                return prefix.withUTF8Buffer { p in
                    var i = 0
                    while i < p.count {
                        if sb[vStart &+ i] != p[i] { return false }
                        i &+= 1
                    }
                    return true
                }
            }
            return false
        }
    }

    /// Appends a field given as strings.
    @discardableResult
    public mutating func append(name: String, value: String) -> Bool {
        append(name: Array(name.utf8), value: Array(value.utf8))
    }

    /// The value of the first field named `name` (compared ASCII case-insensitively), as a String.
    public func first(_ name: String) -> String? {
        let n = Array(name.utf8)
        for i in indices {
            let f = self[i]
            if H2Bytes.equalsLowercase(f.name, n) { return String(decoding: f.value, as: UTF8.self) }
        }
        return nil
    }

    /// The fields as strings (tests and logs; allocates).
    public var pairs: [(String, String)] {
        map { (String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) }
    }
}

/// Byte helpers shared by the translators.
enum H2Bytes {
    /// ASCII lower-case of one byte.
    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// Whether `a`, lower-cased, equals `lowerLiteral` (which must be lower case).
    static func equalsLowercase<C: Collection>(_ a: C, _ lowerLiteral: [UInt8]) -> Bool where C.Element == UInt8 {
        guard a.count == lowerLiteral.count else { return false }
        var i = 0
        for b in a {
            if lower(b) != lowerLiteral[i] { return false }
            i &+= 1
        }
        return true
    }

    /// Whether `a`, lower-cased, equals the ASCII string `s`.
    static func equalsLowercase<C: Collection>(_ a: C, _ s: StaticString) -> Bool where C.Element == UInt8 {
        guard a.count == s.utf8CodeUnitCount else { return false }
        return s.withUTF8Buffer { lit in
            var i = 0
            for b in a {
                if lower(b) != lit[i] { return false }
                i &+= 1
            }
            return true
        }
    }

    /// RFC 9110 token character (method, header name).
    @inline(__always) static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// A field value safe to write on an HTTP/1.1 line: no NUL, CR or LF (HTAB and obs-text allowed).
    static func isSafeValue<C: Collection>(_ v: C) -> Bool where C.Element == UInt8 {
        for b in v where b == 0 || b == 0x0A || b == 0x0D { return false }
        return true
    }

    /// A non-empty token.
    static func isTokenString<C: Collection>(_ v: C) -> Bool where C.Element == UInt8 {
        if v.isEmpty { return false }
        for b in v where !isToken(b) { return false }
        return true
    }

    /// Appends `n` in decimal.
    static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        if n < 0 { out.append(0x2D) }
        var v = n.magnitude
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &tmp) { buf in
            repeat {
                buf[count] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
                count &+= 1
            } while v > 0 && count < 20
            while count > 0 {
                count &-= 1
                out.append(buf[count])
            }
        }
    }

    /// Appends `n` in lower-case hex.
    static func appendHex(_ n: Int, to out: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        var shift = 60
        var started = false
        digits.withUTF8Buffer { d in
            while shift >= 0 {
                let nib = Int(truncatingIfNeeded: (n.magnitude >> shift) & 0xF)
                if nib != 0 || started || shift == 0 {
                    out.append(d[nib])
                    started = true
                }
                shift &-= 4
            }
        }
    }

    /// Parses a decimal Content-Length value (1...19 digits, no sign); nil otherwise.
    static func decimal<C: Collection>(_ v: C) -> UInt64? where C.Element == UInt8 {
        guard !v.isEmpty, v.count <= 18 else { return nil }
        var n: UInt64 = 0
        for b in v {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n &* 10 &+ UInt64(truncatingIfNeeded: b &- 0x30)
        }
        return n
    }
}
