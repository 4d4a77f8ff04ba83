/// The request methods Sluice knows by name; everything else is `.other` (the bytes are still in
/// `HTTPRequestHead.method`). Methods are case-sensitive (RFC 9110 §9.1): `get` is `.other`.
public enum HTTPMethod: UInt8, Sendable {
    case get, head, post, put, delete, options, patch, connect, trace, other

    /// RFC 9110 §9.2.2: GET, HEAD, PUT, DELETE, OPTIONS and TRACE. Used by the retry policy
    /// (`retry_idempotent`).
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        case .post, .patch, .connect, .other: return false
        }
    }

    /// Classifies `count` bytes at `start` of `p`.
    static func match(_ p: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> HTTPMethod {
        switch count {
        case 3:
            if p.equalsExactly(start, 3, "GET") { return .get }
            if p.equalsExactly(start, 3, "PUT") { return .put }
        case 4:
            if p.equalsExactly(start, 4, "POST") { return .post }
            if p.equalsExactly(start, 4, "HEAD") { return .head }
        case 5:
            if p.equalsExactly(start, 5, "PATCH") { return .patch }
            if p.equalsExactly(start, 5, "TRACE") { return .trace }
        case 6:
            if p.equalsExactly(start, 6, "DELETE") { return .delete }
        case 7:
            if p.equalsExactly(start, 7, "OPTIONS") { return .options }
            if p.equalsExactly(start, 7, "CONNECT") { return .connect }
        default:
            break
        }
        return .other
    }
}
