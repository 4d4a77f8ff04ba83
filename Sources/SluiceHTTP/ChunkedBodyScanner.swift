/// The result of `ChunkedBodyScanner.scan`.
public enum ChunkedScan: Sendable, Equatable {
    /// All `n` bytes given belong to the body; the body has not ended (n == bytes.count).
    case consumed(Int)
    /// The body ended after the first `n` bytes given (last-chunk, trailers and final CRLF
    /// included); bytes after them belong to the next message.
    case finished(Int)
    /// An invalid chunk-size line, missing CRLF after chunk data, or an oversized
    /// size line/trailer section: the framing is lost (desync), close the connection.
    case error
}

/// Finds where a chunked body ends so the proxy can forward the chunked bytes verbatim
/// (RFC 9112 §7.1). A byte-at-a-time state machine that skips chunk data in one step; it never
/// allocates and may be fed any split of the body.
///
/// Strict on purpose (desync mitigation): the size is 1...15 hex digits (no sign, no `0x`,
/// no leading whitespace), only SP/HTAB may precede `;`, chunk extensions hold no CTLs but HTAB,
/// every line ends in CRLF (a bare LF or CR is an error), and chunk data must be followed by CRLF.
public struct ChunkedBodyScanner: Sendable {
    private enum State: UInt8, Sendable {
        case sizeStart, size, sizeWS, ext, sizeLF, data, dataCR, dataLF
        case trailerStart, trailer, trailerLF, finalLF, done, failed
    }

    /// Longest chunk-size line (size + extensions) accepted.
    public static let maxSizeLine = 4096
    /// Largest trailer section accepted.
    public static let maxTrailerBytes = 16 * 1024
    /// At most 15 hex digits, so a size never overflows `UInt64` (and stays below 2^60).
    public static let maxSizeDigits = 15

    private var state = State.sizeStart
    private var remaining: UInt64 = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    /// Total chunk-data bytes seen so far (without framing); the proxy compares it with
    /// `max_request_body`.
    public private(set) var dataBytes: UInt64 = 0

    public init() {}

    /// Ready for the next body.
    public mutating func reset() {
        self = ChunkedBodyScanner()
    }

    /// Consumes body bytes; see `ChunkedScan`. After `.finished` or `.error` further calls
    /// return `.finished(0)` / `.error` until `reset()`.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer) -> ChunkedScan {
        let n = bytes.count
        var i = 0
        while i < n {
            switch state {
            case .data:
                let take = Int(min(remaining, UInt64(n &- i)))
                i &+= take
                remaining &-= UInt64(take)
                dataBytes &+= UInt64(take)
                if remaining == 0 { state = .dataCR }
                continue
            case .done:
                return .finished(i)
            case .failed:
                return .error
            default:
                break
            }
            let b = bytes[i]
            i &+= 1
            if !step(b) {
                state = .failed
                return .error
            }
            if state == .done { return .finished(i) }
        }
        switch state {
        case .done: return .finished(n)
        case .failed: return .error
        default: return .consumed(n)
        }
    }

    /// One byte of framing; false when it is invalid.
    @inline(__always)
    private mutating func step(_ b: UInt8) -> Bool {
        let c = ByteClass.table[Int(b)]
        switch state {
        case .sizeStart, .size:
            if c & ByteClass.hex != 0 {
                digits &+= 1
                if digits > Self.maxSizeDigits { return false }
                let d = c & ByteClass.digit != 0 ? b &- 0x30 : ByteClass.lower(b) &- 0x61 &+ 10
                remaining = remaining << 4 | UInt64(d)
                state = .size
                lineBytes &+= 1
                return true
            }
            if state == .sizeStart { return false }
            return afterSize(b, c)
        case .sizeWS:
            return afterSize(b, c)
        case .ext:
            lineBytes &+= 1
            if lineBytes > Self.maxSizeLine { return false }
            if b == 0x0D { state = .sizeLF; return true }
            if c & ByteClass.ctl != 0 && b != 0x09 { return false }
            return true
        case .sizeLF:
            guard b == 0x0A else { return false }
            lineBytes = 0
            digits = 0
            if remaining == 0 {
                state = .trailerStart
            } else {
                state = .data
            }
            return true
        case .dataCR:
            guard b == 0x0D else { return false }
            state = .dataLF
            return true
        case .dataLF:
            guard b == 0x0A else { return false }
            state = .sizeStart
            return true
        case .trailerStart:
            trailerBytes &+= 1
            if trailerBytes > Self.maxTrailerBytes { return false }
            if b == 0x0D { state = .finalLF; return true }
            if c & ByteClass.ctl != 0 && b != 0x09 { return false }
            state = .trailer
            return true
        case .trailer:
            trailerBytes &+= 1
            if trailerBytes > Self.maxTrailerBytes { return false }
            if b == 0x0D { state = .trailerLF; return true }
            if c & ByteClass.ctl != 0 && b != 0x09 { return false }
            return true
        case .trailerLF:
            guard b == 0x0A else { return false }
            state = .trailerStart
            return true
        case .finalLF:
            guard b == 0x0A else { return false }
            state = .done
            return true
        case .data, .done, .failed:
            return false
        }
    }

    /// After the size digits: BWS, `;` extensions, or CR.
    @inline(__always)
    private mutating func afterSize(_ b: UInt8, _ c: UInt8) -> Bool {
        lineBytes &+= 1
        if lineBytes > Self.maxSizeLine { return false }
        if b == 0x0D { state = .sizeLF; return true }
        if b == 0x3B { state = .ext; return true }
        if c & ByteClass.ows != 0 { state = .sizeWS; return true }
        return false
    }
}
