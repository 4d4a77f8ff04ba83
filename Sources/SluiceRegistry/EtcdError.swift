/// What an etcd call can fail with. Small and classified: the caller decides to retry
/// (`unavailable`, `timeout`), give up (`server`) or log hostile bytes (`malformed`).
public enum EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No endpoint could be reached (connect refused or timed out, connection lost before an
    /// answer) within the call's time.
    case unavailable(String)
    /// A request was sent but its answer did not arrive within the call's time.
    case timeout
    /// etcd answered with its error JSON (`{"error", "message", "code"}`): `code` is the gRPC
    /// status code (5 not found, 9 failed precondition, 11 out of range (compacted), ...).
    case server(code: Int, message: String)
    /// An answer we cannot read: bad HTTP framing, bad JSON, a field of the wrong type, bad base64,
    /// an integer out of range.
    case malformed(String)

    public var description: String {
        switch self {
        case .unavailable(let r): "etcd unavailable: \(r)"
        case .timeout: "etcd request timed out"
        case .server(let code, let message): "etcd error \(code): \(message)"
        case .malformed(let r): "malformed etcd answer: \(r)"
        }
    }

    /// gRPC status codes etcd uses that callers test for.
    public static let codeNotFound = 5
    public static let codeOutOfRange = 11
}
