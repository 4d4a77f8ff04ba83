/// One step of an HTTP/1.1 → HTTP/2 translator (`HTTP1ToH2Response`, `HTTP1ToH2Request`).
public enum HTTP1Step: Sendable, Equatable {
    /// Every byte given was used; call again with more.
    case needMore
    /// The head is complete: read the translator's head (and `endStream`).
    case head
    /// Body bytes: this range of the input given to `step` (send as DATA).
    case body(Range<Int>)
    /// The chunked trailer section: read the translator's `trailers`.
    case trailers
    /// The message is complete; bytes after `consumed` belong to the next message.
    case end
    /// The input cannot be translated safely: reset the stream / close the connection.
    case error
}

/// Decodes an HTTP/1.1 body (RFC 9112 §6, §7.1) into plain bytes and trailers, for any split of
/// the input. Strict like `ChunkedBodyScanner`: 1...15 hex digits, CRLF line ends, bounded size
/// line and trailer section; it never traps on hostile input.
struct HTTP1BodyDecoder: Sendable {
    enum Mode: Sendable, Equatable { case none, length(UInt64), chunked, untilClose }

    private enum State: UInt8, Sendable {
        case size, sizeWS, ext, sizeLF, data, dataCR, dataLF, trailerStart, trailerLine, trailerLF, finalLF
        case done, failed
    }

    static let maxSizeLine = 4096
    static let maxTrailerBytes = 16 * 1024
    static let maxTrailers = 100

    private(set) var mode: Mode = .none
    private var state = State.size
    private var remaining: UInt64 = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBuf: [UInt8] = []
    /// Trailers parsed from the chunked trailer section.
    private(set) var trailers = H2Headers()
    private var trailersReported = false

    mutating func start(_ m: Mode) {
        mode = m
        digits = 0
        lineBytes = 0
        trailerBuf.removeAll(keepingCapacity: true)
        trailers = H2Headers()
        trailersReported = false
        switch m {
        case .none: state = .done
        case .length(let n):
            remaining = n
            state = n == 0 ? .done : .data
        case .chunked:
            remaining = 0
            state = .size
        case .untilClose:
            state = .data
        }
    }

    var isDone: Bool { state == .done }

    /// The input ended (connection closed): fine only for an until-close body or a finished one.
    mutating func endOfInput() -> HTTP1Step {
        if state == .done { return .end }
        if mode == .untilClose && state != .failed {
            state = .done
            return .end
        }
        state = .failed
        return .error
    }

    /// One step over `p`; returns the step and the bytes of `p` it used.
    mutating func step(_ p: UnsafeRawBufferPointer) -> (HTTP1Step, Int) {
        let n = p.count
        var i = 0
        while true {
            switch state {
            case .failed:
                return (.error, i)
            case .done:
                if !trailersReported && !trailers.isEmpty {
                    trailersReported = true
                    return (.trailers, i)
                }
                return (.end, i)
            case .data:
                if i >= n { return (.needMore, i) }
                if mode == .untilClose { return (.body(i..<n), n) }
                let take = Int(truncatingIfNeeded: min(remaining, UInt64(truncatingIfNeeded: n &- i)))
                remaining &-= UInt64(truncatingIfNeeded: take)
                if remaining == 0 {
                    state = mode == .chunked ? .dataCR : .done
                }
                return (.body(i..<(i &+ take)), i &+ take)
            default:
                if i >= n { return (.needMore, i) }
                let b = p[i]
                i &+= 1
                if !framing(b) {
                    state = .failed
                    return (.error, i)
                }
            }
        }
    }

    @inline(__always) private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b &- 0x30
        case 0x41...0x46: return b &- 0x41 &+ 10
        case 0x61...0x66: return b &- 0x61 &+ 10
        default: return nil
        }
    }

    /// One byte of chunk framing; false when invalid.
    private mutating func framing(_ b: UInt8) -> Bool {
        switch state {
        case .size:
            if let d = Self.hexValue(b) {
                digits &+= 1
                if digits > 15 { return false }
                remaining = remaining << 4 | UInt64(truncatingIfNeeded: d)
                lineBytes &+= 1
                return true
            }
            if digits == 0 { return false }
            return afterSize(b)
        case .sizeWS:
            return afterSize(b)
        case .ext:
            lineBytes &+= 1
            if lineBytes > Self.maxSizeLine { return false }
            if b == 0x0D { state = .sizeLF; return true }
            if (b < 0x20 && b != 0x09) || b == 0x7F { return false }
            return true
        case .sizeLF:
            guard b == 0x0A else { return false }
            digits = 0
            lineBytes = 0
            state = remaining == 0 ? .trailerStart : .data
            return true
        case .dataCR:
            guard b == 0x0D else { return false }
            state = .dataLF
            return true
        case .dataLF:
            guard b == 0x0A else { return false }
            state = .size
            return true
        case .trailerStart:
            if b == 0x0D { state = .finalLF; return true }
            state = .trailerLine
            return trailerByte(b)
        case .trailerLine:
            if b == 0x0D { state = .trailerLF; return true }
            return trailerByte(b)
        case .trailerLF:
            guard b == 0x0A else { return false }
            state = .trailerStart
            let ok = parseTrailerLine()
            trailerBuf.removeAll(keepingCapacity: true)
            return ok
        case .finalLF:
            guard b == 0x0A else { return false }
            state = .done
            return true
        case .data, .done, .failed:
            return false
        }
    }

    private mutating func afterSize(_ b: UInt8) -> Bool {
        lineBytes &+= 1
        if lineBytes > Self.maxSizeLine { return false }
        if b == 0x0D { state = .sizeLF; return true }
        if b == 0x3B { state = .ext; return true }
        if b == 0x20 || b == 0x09 { state = .sizeWS; return true }
        return false
    }

    private mutating func trailerByte(_ b: UInt8) -> Bool {
        if (b < 0x20 && b != 0x09) || b == 0x7F { return false }
        lineBytes &+= 1
        if lineBytes > Self.maxTrailerBytes { return false }
        trailerBuf.append(b)
        return true
    }

    /// `name: value` → trailers (names lower-cased; fields not allowed in trailers are dropped).
    private mutating func parseTrailerLine() -> Bool {
        guard let colon = trailerBuf.firstIndex(of: 0x3A), colon > 0 else { return false }
        let name = trailerBuf[..<colon]
        guard H2Bytes.isTokenString(name) else { return false }
        var vs = colon &+ 1
        var ve = trailerBuf.count
        while vs < ve && (trailerBuf[vs] == 0x20 || trailerBuf[vs] == 0x09) { vs &+= 1 }
        while ve > vs && (trailerBuf[ve &- 1] == 0x20 || trailerBuf[ve &- 1] == 0x09) { ve &-= 1 }
        if !H2Translate.allowedInTrailers(name) { return true }
        if trailers.count >= Self.maxTrailers { return false }
        trailers.append(name: name.lazy.map(H2Bytes.lower), value: trailerBuf[vs..<ve])
        return true
    }
}
