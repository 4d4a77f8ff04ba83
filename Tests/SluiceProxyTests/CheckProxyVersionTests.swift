import SluiceConfig
import SluiceCore
import Testing

@testable import SluiceControlPlane

/// Which PROXY header a group's health checks send: the group's setting, else the highest of
/// the listeners forwarding to it, else none.
@Suite struct CheckProxyVersionTests {
    static let yaml = """
    listeners:
      - { name: a, protocol: tcp, bind: "127.0.0.1:7001", proxy_protocol: v1, default: { forward: both } }
      - { name: b, protocol: tcp, bind: "127.0.0.1:7002", proxy_protocol: v2, default: { forward: both } }
      - { name: c, protocol: tcp, bind: "127.0.0.1:7003", proxy_protocol: v1, default: { forward: own } }
      - { name: d, protocol: tcp, bind: "127.0.0.1:7004", default: { forward: plain } }
      - { name: e, protocol: tcp, bind: "127.0.0.1:7005", proxy_protocol: v2, default: { forward: [{ group: split, weight: 1 }, { group: plain2, weight: 0 }] } }
    target_groups:
      - { name: both, protocol: tcp, targets: [] }
      - { name: own, protocol: tcp, proxy_protocol: v2, targets: [] }
      - { name: plain, protocol: tcp, targets: [] }
      - { name: split, protocol: tcp, targets: [] }
      - { name: plain2, protocol: tcp, proxy_protocol: v1, targets: [] }
      - { name: unused, protocol: tcp, targets: [] }
    """

    @Test func groupWinsElseHighestListener() throws {
        let config = try ConfigLoader.parse(yaml: Self.yaml, file: "test.yaml")
        let v = ControlPlane.checkProxyVersions(config)
        #expect(v["both"] == .v2)  // v1 and v2 listeners: the higher
        #expect(v["own"] == .v2)  // the group's own setting over its v1 listener
        #expect(v["plain"] == nil)
        #expect(v["split"] == .v2)  // a weighted forward counts
        #expect(v["plain2"] == .v1)  // group setting below the listener's v2: the group's
        #expect(v["unused"] == nil)
    }
}
