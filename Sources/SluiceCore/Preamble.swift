/// What a connection reads before anything else, even before a TLS handshake: nothing for
/// most listeners, a PROXY protocol header (v1 or v2) on `accept_proxy_protocol` listeners.
/// Sans-I/O: the connection feeds the bytes it peeked, the preamble answers what to do next.
public enum Preamble: Sendable, Equatable {
    /// No preamble: the connection goes straight to its handshake or payload.
    case none
    /// A PROXY protocol header (`ProxyHeaderParser`): its addresses replace the peer's.
    case proxyHeader

    /// The preamble a listener's connections start with.
    public init(acceptProxy: Bool) { self = acceptProxy ? .proxyHeader : .none }

    /// What the connection does next.
    public enum Step: Sendable, Equatable {
        /// The preamble is complete; `consumed` bytes of what was fed belong to it (the rest
        /// is payload, left in the socket). `carried` is the client the header names, nil to
        /// keep the real peer (no preamble, v2 LOCAL, v1 UNKNOWN).
        case done(consumed: Int, carried: ProxyHeaderParser.Carried?)
        /// More bytes are needed: wait for the client to be readable and feed again.
        case needMore
        /// The preamble is malformed: close the connection.
        case reject(ProxyHeaderRejection)
    }

    /// Whether the connection must read from the client before it can proceed. A preamble
    /// that needs no bytes completes with `step(input:)` on an empty input.
    public var readsInput: Bool {
        switch self {
        case .none: false
        case .proxyHeader: true
        }
    }

    /// The most bytes `step(input:)` needs to decide: a peek of this size always suffices.
    public var maxLength: Int {
        switch self {
        case .none: 0
        case .proxyHeader: ProxyHeaderParser.maxLength
        }
    }

    /// Feeds the bytes received so far (all of them, from the first byte of the connection).
    public func step(input: UnsafeRawBufferPointer) -> Step {
        switch self {
        case .none:
            return .done(consumed: 0, carried: nil)
        case .proxyHeader:
            switch ProxyHeaderParser.parse(input) {
            case .needMore: return .needMore
            case .done(let consumed, let carried): return .done(consumed: consumed, carried: carried)
            case .reject(let why): return .reject(why)
            }
        }
    }
}
