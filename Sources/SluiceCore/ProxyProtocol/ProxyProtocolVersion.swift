/// The PROXY protocol version a listener or group sends to its targets (HAProxy's
/// proxy-protocol.txt): v1 is the text line, v2 the binary header.
public enum ProxyProtocolVersion: UInt8, Sendable { case v1 = 1, v2 = 2 }
