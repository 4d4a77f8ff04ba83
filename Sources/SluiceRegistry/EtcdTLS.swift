/// TLS settings for `https://` endpoints: the CA that signed etcd's certificates (the system's
/// CAs when nil) and a client certificate for etcd's `--client-cert-auth`. The server's
/// certificate must match the endpoint's host (an IP literal: an IP SAN) unless `verify` is off.
public struct EtcdTLS: Sendable, Equatable {
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?
    public var verify: Bool

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verify: Bool = true) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.verify = verify
    }
}
