/// A compiled `*` / `?` pattern: a span of the rule table's byte arena plus the shape that
/// picks a fast path. Case-insensitive patterns are stored lowercased (ASCII).
struct WildcardPattern: Sendable {
    enum Shape: UInt8, Sendable {
        /// No wildcard: equal bytes.
        case exact
        /// Only `*`s: anything, also nothing.
        case any
        /// `literal*`.
        case prefix
        /// `*literal`.
        case suffix
        /// Anything else: the general matcher.
        case general
    }

    /// Offset of the bytes to compare in the arena: the literal for `prefix`/`suffix`, the whole
    /// pattern otherwise.
    var start: Int32
    var count: Int32
    var shape: Shape

    static let star = UInt8(ascii: "*")
    static let question = UInt8(ascii: "?")

    /// Compiles `text`, appending its bytes to `arena`.
    init(_ text: String, foldCase: Bool, arena: inout [UInt8]) {
        var bytes = Array(text.utf8)
        if foldCase { bytes = bytes.map(ASCII.lower) }
        let stars = bytes.count { $0 == Self.star }
        let questions = bytes.count { $0 == Self.question }
        var literal = bytes[...]
        if stars == 0 && questions == 0 {
            shape = .exact
        } else if stars == bytes.count {
            shape = .any
            literal = []
        } else if questions == 0 && stars == 1 && bytes.last == Self.star {
            shape = .prefix
            literal = bytes.dropLast()
        } else if questions == 0 && stars == 1 && bytes.first == Self.star {
            shape = .suffix
            literal = bytes.dropFirst()
        } else {
            shape = .general
        }
        start = Int32(arena.count)
        count = Int32(literal.count)
        arena.append(contentsOf: literal)
    }

    /// Whether the bytes of `input` match; with `foldCase` the input is compared in lowercase.
    @inline(__always)
    func matches(_ input: UnsafeRawBufferPointer, foldCase: Bool, arena: UnsafeBufferPointer<UInt8>) -> Bool {
        let literal = UnsafeBufferPointer(rebasing: arena[Int(start)..<Int(start) + Int(count)])
        switch shape {
        case .any:
            return true
        case .exact:
            return input.count == literal.count && ASCII.equal(input, 0, literal, foldCase: foldCase)
        case .prefix:
            return input.count >= literal.count && ASCII.equal(input, 0, literal, foldCase: foldCase)
        case .suffix:
            return input.count >= literal.count
                && ASCII.equal(input, input.count - literal.count, literal, foldCase: foldCase)
        case .general:
            var cursor = RawCursor(input, foldCase: foldCase)
            return Self.glob(literal, &cursor)
        }
    }

    /// Matches percent-decoded input (`+` read as a space), case-insensitively, always through
    /// the general matcher (the decoded length is not known up front).
    @inline(__always)
    func matchesDecoded(_ input: UnsafeRawBufferPointer, arena: UnsafeBufferPointer<UInt8>) -> Bool {
        if shape == .any { return true }
        // For `prefix`/`suffix`, `literal` lacks its `*`: match against the full pattern, which
        // the arena does not keep, by wrapping the literal with the star around it.
        let literal = UnsafeBufferPointer(rebasing: arena[Int(start)..<Int(start) + Int(count)])
        var cursor = DecodingCursor(input)
        return Self.glob(literal, &cursor, leadingStar: shape == .suffix, trailingStar: shape == .prefix)
    }

    /// The iterative wildcard match: no recursion and no allocation. On a mismatch after a `*`,
    /// that star takes one more input byte and matching resumes after it; earlier stars never
    /// need revisiting, so the cost is at most pattern length × input length.
    ///
    /// `leadingStar` / `trailingStar` stand for a `*` before / after `pattern` (the fast-path
    /// shapes store their literal without it). `?` takes one character: a UTF-8 lead byte
    /// together with its continuation bytes.
    @inline(__always)
    static func glob<C: MatchCursor>(
        _ pattern: UnsafeBufferPointer<UInt8>, _ input: inout C, leadingStar: Bool = false,
        trailingStar: Bool = false
    ) -> Bool {
        // Pattern positions run over [leading star] pattern [trailing star].
        let base = leadingStar ? 1 : 0
        let length = base + pattern.count + (trailingStar ? 1 : 0)
        @inline(__always) func at(_ p: Int) -> UInt8 {
            if p < base { return star }
            let i = p - base
            return i < pattern.count ? pattern[i] : star
        }
        var p = 0
        var starP = -1
        var starInput = input
        while !input.isAtEnd {
            if p < length {
                let c = at(p)
                if c == star {
                    starP = p
                    p += 1
                    starInput = input
                    continue
                }
                if c == question {
                    input.advanceCharacter()
                    p += 1
                    continue
                }
                if c == input.current {
                    input.advance()
                    p += 1
                    continue
                }
            }
            guard starP >= 0 else { return false }
            // The last star takes one more byte.
            p = starP + 1
            starInput.advance()
            input = starInput
        }
        while p < length && at(p) == star { p += 1 }
        return p == length
    }
}

/// Input of `WildcardPattern.glob`: a forward position over bytes that can be saved by copy.
protocol MatchCursor {
    var isAtEnd: Bool { get }
    /// The byte at the position (lowercased when folding, decoded when decoding).
    var current: UInt8 { get }
    mutating func advance()
    /// Past one whole UTF-8 character.
    mutating func advanceCharacter()
}

/// Raw bytes, optionally folded to lowercase.
struct RawCursor: MatchCursor {
    let bytes: UnsafeRawBufferPointer
    let foldCase: Bool
    var index = 0

    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer, foldCase: Bool) {
        self.bytes = bytes
        self.foldCase = foldCase
    }

    var isAtEnd: Bool { @inline(__always) get { index >= bytes.count } }
    var current: UInt8 { @inline(__always) get { foldCase ? ASCII.lower(bytes[index]) : bytes[index] } }
    @inline(__always) mutating func advance() { index += 1 }
    @inline(__always) mutating func advanceCharacter() {
        index += 1
        while index < bytes.count, bytes[index] & 0xC0 == 0x80 { index += 1 }
    }
}

/// A query component decoded on the fly: `%XX` is one byte, `+` a space, a `%` not followed
/// by two hex digits itself; folded to lowercase.
struct DecodingCursor: MatchCursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    /// Decoded byte at `index` and how many raw bytes it spans.
    private(set) var current: UInt8 = 0
    private var width = 0

    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        decode()
    }

    var isAtEnd: Bool { @inline(__always) get { index >= bytes.count } }

    @inline(__always) private mutating func decode() {
        guard index < bytes.count else { return }
        let b = bytes[index]
        if b == UInt8(ascii: "%"), index + 2 < bytes.count, let h = ASCII.hexValue(bytes[index + 1]),
            let l = ASCII.hexValue(bytes[index + 2])
        {
            current = ASCII.lower(h << 4 | l)
            width = 3
        } else {
            current = b == UInt8(ascii: "+") ? UInt8(ascii: " ") : ASCII.lower(b)
            width = 1
        }
    }

    @inline(__always) mutating func advance() {
        index += width
        decode()
    }

    @inline(__always) mutating func advanceCharacter() {
        advance()
        while !isAtEnd, current & 0xC0 == 0x80 { advance() }
    }
}

/// ASCII helpers for the matcher.
enum ASCII {
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b &- UInt8(ascii: "A") < 26 ? b | 0x20 : b
    }

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Whether `input[offset...]` starts with `literal` (folding `input` when asked; a folded
    /// literal is already lowercase).
    @inline(__always)
    static func equal(
        _ input: UnsafeRawBufferPointer, _ offset: Int, _ literal: UnsafeBufferPointer<UInt8>, foldCase: Bool
    ) -> Bool {
        var i = 0
        if foldCase {
            while i < literal.count {
                if lower(input[offset + i]) != literal[i] { return false }
                i += 1
            }
        } else {
            while i < literal.count {
                if input[offset + i] != literal[i] { return false }
                i += 1
            }
        }
        return true
    }

    /// Whether the percent-decoded `input` equals `literal` (already lowercase), ignoring case.
    @inline(__always)
    static func decodedEqual(_ input: UnsafeRawBufferPointer, _ literal: UnsafeBufferPointer<UInt8>) -> Bool {
        var cursor = DecodingCursor(input)
        var i = 0
        while !cursor.isAtEnd {
            guard i < literal.count, cursor.current == literal[i] else { return false }
            cursor.advance()
            i += 1
        }
        return i == literal.count
    }
}
