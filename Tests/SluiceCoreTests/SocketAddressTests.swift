import SluiceCore
import Testing

/// The typed accessors the rule matcher and logs read instead of raw sockaddr bytes.
struct SocketAddressAccessorTests {
    @Test func ipv4AddressAndPort() throws {
        let a = try #require(SocketAddress(host: "10.1.2.3", port: 8080))
        #expect(a.isIPv4 && !a.isIPv6)
        #expect(a.ipv4Address == 0x0A01_0203)
        #expect(a.ipv6Address == nil)
        #expect(a.port == 8080)
        let top = try #require(SocketAddress(host: "255.255.255.255", port: 65535))
        #expect(top.ipv4Address == 0xFFFF_FFFF)
        #expect(top.port == 65535)
    }

    @Test func ipv6AddressAndPort() throws {
        let loopback = try #require(SocketAddress(host: "::1", port: 443))
        #expect(loopback.isIPv6 && !loopback.isIPv4)
        #expect(loopback.ipv4Address == nil)
        let words = try #require(loopback.ipv6Address)
        #expect(words.0 == 0 && words.1 == 1)
        #expect(loopback.port == 443)
        // Every byte set, the top bit of both words included: no shift or sign trouble.
        let full = try #require(SocketAddress(host: "ffff:fffe:fdfc:fbfa:f9f8:f7f6:f5f4:f3f2", port: 1))
        let w = try #require(full.ipv6Address)
        #expect(w.0 == 0xFFFF_FFFE_FDFC_FBFA && w.1 == 0xF9F8_F7F6_F5F4_F3F2)
        let mapped = try #require(SocketAddress(host: "::ffff:192.0.2.1", port: 2))
        let m = try #require(mapped.ipv6Address)
        #expect(m.0 == 0 && m.1 == 0x0000_FFFF_C000_0201)
    }

    @Test func anEmptyAddressIsNeitherFamily() {
        let empty = SocketAddress()
        #expect(empty.ipv4Address == nil && empty.ipv6Address == nil)
        #expect(!empty.isIPv4 && !empty.isIPv6)
    }
}
