/// Line finding and header-line lexing shared by the request and response parsers.
///
/// `LineScanner` keeps two offsets into the growing head buffer: where the current line
/// starts and how far the search for its LF has got, so a call with more bytes resumes exactly
/// where the previous one stopped and no byte is searched twice.
struct LineScanner: Sendable {
    /// Offset of the first byte of the line being searched for (also: bytes consumed so far).
    var lineStart = 0
    /// Offset where the LF search resumes.
    var searchPos = 0

    /// One complete line: `[start, end)` without its CRLF (or bare LF); `next` is the offset after the LF.
    struct Line {
        var start: Int
        var end: Int
        var next: Int
        var bareLF: Bool
    }

    /// Returns the next complete line and consumes it, or nil when no LF has arrived yet.
    @inline(__always)
    mutating func next(_ p: UnsafeRawBufferPointer) -> Line? {
        let n = p.count
        var i = searchPos
        while i < n {
            if p[i] == 0x0A { break }
            i &+= 1
        }
        if i == n {
            searchPos = n
            return nil
        }
        var end = i
        var bare = true
        if end > lineStart && p[end &- 1] == 0x0D {
            end &-= 1
            bare = false
        }
        let line = Line(start: lineStart, end: end, next: i &+ 1, bareLF: bare)
        lineStart = i &+ 1
        searchPos = i &+ 1
        return line
    }
}

/// What lexing one header line found; the request parser turns these into desync classes,
/// the response parser into 502s.
struct HeaderLineFlags: Sendable {
    var rawValue: UInt16
    init(rawValue: UInt16) { self.rawValue = rawValue }
    /// No flags.
    static let none = HeaderLineFlags(rawValue: 0)
    /// Whether every flag of `m` is set. (Plain bit operations rather than `OptionSet`: its
    /// generic `SetAlgebra` witnesses showed up in profiles of the parser.)
    @inline(__always) func has(_ m: HeaderLineFlags) -> Bool { rawValue & m.rawValue == m.rawValue }
    /// Whether any flag of `m` is set.
    @inline(__always) func hasAny(_ m: HeaderLineFlags) -> Bool { rawValue & m.rawValue != 0 }
    @inline(__always) mutating func add(_ m: HeaderLineFlags) { rawValue |= m.rawValue }
    @inline(__always) static func | (a: HeaderLineFlags, b: HeaderLineFlags) -> HeaderLineFlags {
        HeaderLineFlags(rawValue: a.rawValue | b.rawValue)
    }
    /// No colon on the line.
    static let noColon = HeaderLineFlags(rawValue: 1 << 0)
    /// The name is empty (or only whitespace).
    static let emptyName = HeaderLineFlags(rawValue: 1 << 1)
    /// SP or HTAB between the name and the colon.
    static let wsBeforeColon = HeaderLineFlags(rawValue: 1 << 2)
    /// The name has bytes that are not `tchar` (other than NUL/CR).
    static let nameNotToken = HeaderLineFlags(rawValue: 1 << 3)
    /// NUL or CR in the name.
    static let nameFatal = HeaderLineFlags(rawValue: 1 << 4)
    /// NUL or CR in the value.
    static let valueFatal = HeaderLineFlags(rawValue: 1 << 5)
    /// Other control characters (not HTAB) in the value.
    static let valueCtl = HeaderLineFlags(rawValue: 1 << 6)
    /// obs-text (>= 0x80) in the value.
    static let valueObsText = HeaderLineFlags(rawValue: 1 << 7)
}

/// The result of lexing one header line.
struct LexedHeader {
    var name: ByteRange
    var value: ByteRange
    var flags: HeaderLineFlags
}

enum HeaderLexer {
    /// Lexes `name ":" OWS value OWS` in `[start, end)` (a line that does not start with
    /// whitespace). The name is trimmed of trailing whitespace (flagged `wsBeforeColon`).
    @inline(__always)
    static func lex(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> LexedHeader {
        let table = ByteClass.table
        var flags = HeaderLineFlags.none
        var i = start
        var lastNonWS = start  // one past the last non-whitespace name byte
        while i < end {
            let b = p[i]
            if b == 0x3A { break }
            let c = table[Int(b)]
            if c & ByteClass.token == 0 {
                if c & ByteClass.ows != 0 {
                    // Whitespace inside the name ("Transfer- Encoding") is only non-token;
                    // whitespace right before the colon is decided below.
                } else if c & ByteClass.fatal != 0 {
                    flags.add(.nameFatal)
                } else {
                    flags.add(.nameNotToken)
                }
            }
            if c & ByteClass.ows == 0 { lastNonWS = i &+ 1 }
            i &+= 1
        }
        if i == end {
            flags.add(.noColon)
            return LexedHeader(name: ByteRange(start, lastNonWS), value: ByteRange(end, end), flags: flags)
        }
        if lastNonWS < i { flags.add(.wsBeforeColon) }
        if lastNonWS == start { flags.add(.emptyName) }
        // Whitespace inside the (trimmed) name makes it a non-token.
        var k = start
        while k < lastNonWS {
            if table[Int(p[k])] & ByteClass.ows != 0 { flags.add(.nameNotToken) }
            k &+= 1
        }
        let value = trimmedValue(p, i &+ 1, end, &flags)
        return LexedHeader(name: ByteRange(start, lastNonWS), value: value, flags: flags)
    }

    /// Trims OWS around `[start, end)` and flags NUL/CR, other CTLs and obs-text inside.
    @inline(__always)
    static func trimmedValue(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ flags: inout HeaderLineFlags)
        -> ByteRange
    {
        let table = ByteClass.table
        var s = start
        while s < end && table[Int(p[s])] & ByteClass.ows != 0 { s &+= 1 }
        var e = end
        while e > s && table[Int(p[e &- 1])] & ByteClass.ows != 0 { e &-= 1 }
        var j = s
        while j < e {
            let c = table[Int(p[j])]
            if c & ByteClass.vchar == 0 {
                if c & ByteClass.fatal != 0 {
                    flags.add(.valueFatal)
                } else if c & ByteClass.obsText != 0 {
                    flags.add(.valueObsText)
                } else if c & ByteClass.ctl != 0 && p[j] != 0x09 {
                    flags.add(.valueCtl)
                }
            }
            j &+= 1
        }
        return ByteRange(s, e)
    }

    /// Whether a header name that is not exactly Transfer-Encoding or Content-Length would be
    /// taken for one by a lenient parser: its ASCII letters, lower-cased, spell
    /// `transferencoding` or `contentlength`, where a run of non-ASCII bytes may stand for one
    /// letter (`Tranſfer-Encoding`, `Transfer-Encodıng`) and other bytes (`_`, SP, CTLs) are skipped;
    /// also when the name is followed by whitespace or a CTL and more (`Transfer-Encoding x`).
    static func isSuspicious(_ p: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        let n = Int(name.count)
        guard n >= 13 && n <= 64 else { return false }
        return lettersSpell(p, name, "transferencoding") || lettersSpell(p, name, "contentlength")
    }

    private static func lettersSpell(_ p: UnsafeRawBufferPointer, _ name: ByteRange, _ literal: StaticString) -> Bool {
        let l = literal.utf8Start
        let ln = literal.utf8CodeUnitCount
        var li = 0
        var i = Int(name.start)
        let end = name.end
        while i < end {
            let b = p[i]
            if b >= 0x80 {
                while i < end && p[i] >= 0x80 { i &+= 1 }
                if li < ln { li &+= 1 }
                continue
            }
            let lower = ByteClass.lower(b)
            if lower >= 0x61 && lower <= 0x7A {
                if li >= ln || l[li] != lower { return false }
                li &+= 1
            } else if li == ln && ByteClass.table[Int(b)] & (ByteClass.ows | ByteClass.ctl) != 0 {
                // `Transfer-Encoding chunked`, `Transfer-Encoding x`: the name as a first word.
                return true
            }
            i &+= 1
        }
        return li == ln
    }
}

/// Comma-separated list values (`#rule`), iterated without allocating.
enum ListValue {
    /// Calls `body` with each element of `range`, trimmed of OWS (empty elements included).
    /// Stops early when `body` returns false.
    @inline(__always)
    static func forEach(_ p: UnsafeRawBufferPointer, _ range: ByteRange, _ body: (Int, Int) -> Bool) {
        let table = ByteClass.table
        var i = Int(range.start)
        let end = range.end
        while true {
            var s = i
            while i < end && p[i] != 0x2C { i &+= 1 }
            var e = i
            while s < e && table[Int(p[s])] & ByteClass.ows != 0 { s &+= 1 }
            while e > s && table[Int(p[e &- 1])] & ByteClass.ows != 0 { e &-= 1 }
            if !body(s, e) { return }
            if i >= end { return }
            i &+= 1
        }
    }

    /// Parses a Content-Length element: 1*DIGIT, at most 18 digits (below 10^18, so no
    /// overflow is possible). Anything else (`+5`, `0x10`, `-1`, empty, huge) is nil.
    @inline(__always)
    static func decimal(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> UInt64? {
        guard e > s && e &- s <= 18 else { return nil }
        var v: UInt64 = 0
        var i = s
        while i < e {
            let d = p[i] &- 0x30
            if d > 9 { return nil }
            v = v &* 10 &+ UInt64(d)
            i &+= 1
        }
        return v
    }

    /// Whether the list in `range` has the element `token` (case-insensitive, lower-case literal).
    @inline(__always)
    static func contains(_ p: UnsafeRawBufferPointer, _ range: ByteRange, _ token: StaticString) -> Bool {
        var found = false
        forEach(p, range) { s, e in
            if p.equalsLowercase(s, e &- s, token) { found = true; return false }
            return true
        }
        return found
    }
}
