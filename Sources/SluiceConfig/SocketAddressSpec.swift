/// A numeric socket address as written in the config (`HOST:PORT`, `[v6]:PORT`), after name
/// resolution. Kept as text + family + port so the config module needs no socket types;
/// `SluiceCore.SocketAddress` turns it into a `sockaddr`.
public struct SocketAddressSpec: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case inet, inet6 }
    public var family: Family
    /// Numeric host (`127.0.0.1`, `::1`) without brackets.
    public var host: String
    public var port: UInt16

    public init(family: Family, host: String, port: UInt16) {
        self.family = family
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:80` or `[::1]:80`.
    public var description: String {
        family == .inet6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
