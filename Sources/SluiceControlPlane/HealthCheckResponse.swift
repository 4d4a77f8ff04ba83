import SluiceProxy
import SluiceHTTP

/// The answer to one HTTP health check, judged from its head with SluiceHTTP's
/// `HTTPResponseParser` (sans-I/O: the checker reads, this decides).
///
/// The matcher needs only the status code, but the whole head must parse: a garbled status
/// line or header, or an answer that ends before its head does, is `.garbled` (the checker
/// records `Target.ResponseCodeMismatch`). Interim `1xx` heads (not 101) are skipped. The body
/// is never read.
struct HealthCheckResponse {
    enum Verdict: Equatable {
        /// The head is not complete yet.
        case needMore
        /// The final head's status code (100...999).
        case status(Int)
        /// Not an HTTP/1 answer, or over the limits.
        case garbled
    }

    /// A check's answer has a small head: these bound the parser and the bytes kept.
    static let limits = HTTPLimits(maxRequestLine: 1024, maxHeadBytes: 16 * 1024, maxHeaders: 64)
    /// Most bytes kept for all heads of one answer (interim heads included).
    static let maxBytes = limits.maxHeadBytes

    private var parser = HTTPResponseParser(limits: HealthCheckResponse.limits)
    private var bytes: [UInt8] = []
    /// Offset of the head being parsed (past any interim heads); never beyond `bytes.count`.
    private var headStart = 0

    init() {}

    /// Ready for the next check; keeps the storage.
    mutating func reset() {
        parser.reset()
        bytes.removeAll(keepingCapacity: true)
        headStart = 0
    }

    /// Adds bytes read from the target and judges what is there.
    mutating func append(_ input: UnsafeRawBufferPointer) -> Verdict {
        bytes.append(contentsOf: input)
        while true {
            let start = headStart
            let result = bytes.withUnsafeBytes { raw in
                parser.parse(UnsafeRawBufferPointer(rebasing: raw[start...]), requestMethod: .get)
            }
            switch result {
            case .error:
                return .garbled
            case .needMore:
                // The parser bounds one head; this bounds a stream of interim heads.
                return bytes.count > Self.maxBytes ? .garbled : .needMore
            case .complete:
                guard parser.head.isInformational else { return .status(parser.head.status) }
                // headLength ≤ the bytes given to the parser, so headStart stays ≤ bytes.count.
                headStart = start + parser.head.headLength
                parser.reset()
            }
        }
    }
}
