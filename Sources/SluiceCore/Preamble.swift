/// What a connection reads before its transport carries payload: nothing for a plain
/// listener; a PROXY protocol header or a TLS handshake later. Sans-I/O: the connection
/// feeds the bytes it peeked or read, the preamble answers what to do next.
///
/// Only `.none` exists today; the seam is here so that the L4 and L7 connection state
/// machines already pass through a preamble phase (`.preamble` before connecting).
public enum Preamble: Sendable, Equatable {
    /// No preamble: the connection goes straight to its payload.
    case none

    /// What the connection does next.
    public enum Step: Sendable, Equatable {
        /// The preamble is complete; `consumed` bytes of what was fed belong to it (the rest
        /// is payload). The connection proceeds (picks and connects a target).
        case done(consumed: Int)
        /// More bytes are needed: wait for the client to be readable and feed again.
        case needMore
        /// The preamble is malformed: close the connection.
        case reject
    }

    /// Whether the connection must read from the client before it can proceed. A preamble
    /// that needs no bytes completes with `step(input:)` on an empty input.
    public var readsInput: Bool {
        switch self {
        case .none: false
        }
    }

    /// Feeds the bytes received so far (all of them, from the first byte of the connection).
    public func step(input: UnsafeRawBufferPointer) -> Step {
        switch self {
        case .none: .done(consumed: 0)
        }
    }
}
