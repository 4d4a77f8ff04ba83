/// The PROXY protocol version a connection or flow sends to its target (HAProxy's
/// proxy-protocol.txt): v1 is one text line (TCP only), v2 a binary header (TCP and UDP).
public enum ProxyProtocolVersion: UInt8, Sendable {
    case v1 = 1
    case v2 = 2
}
