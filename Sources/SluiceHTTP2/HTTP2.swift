/// HTTP/2 for Sluice on libnghttp2: sans-I/O server and client sessions with abuse bounds,
/// and the translation between HTTP/2 streams and the HTTP/1.1 exchange of the data plane.
public enum HTTP2 {
    /// The ALPN protocol id of HTTP/2 over TLS.
    public static let alpnID = "h2"
    /// The client connection preface (RFC 9113 §3.4); an h2c prior-knowledge client starts with it.
    public static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
}
