import SluiceConfig
import Testing

/// `node.name` (SPEC §10): the host name unless written; a name like the others.
@Suite struct NodeNameConfigTests {
    @Test func nameDefaultsToTheHostName() throws {
        let config = try #require(load(listenerDocument("")))
        #expect(config.node.name == NodeConfig.defaultName)
        #expect(!config.node.name.isEmpty)
    }

    @Test func writtenName() throws {
        let config = try #require(load("node: { name: lb-a1, zone: zone-a }\n" + listenerDocument("")))
        #expect(config.node.name == "lb-a1")
        let errors = loadErrors("node: { name: \"lb a1\" }\n" + listenerDocument(""))
        #expect(errors.map(\.path) == ["node.name"])
        #expect(errors.first?.message == "expected a name of letters, digits, _ . and -, got \"lb a1\"")
    }
}

/// udp and tcp_udp listeners and groups, `max_flows`, `proxy_protocol` and
/// `accept_proxy_protocol` (SPEC §2, §5).
@Suite struct UDPAndProxyConfigTests {
    private func udpDocument(_ listenerExtra: String = "", protocolName: String = "udp", group: String = "udp",
                             groupExtra: String = "") -> String {
        """
        listeners:
          - name: dns
            protocol: \(protocolName)
            bind: 127.0.0.1:5353
            default: { forward: dns }
        \(listenerExtra.isEmpty ? "" : "    " + listenerExtra)
        target_groups:
          - { name: dns, protocol: \(group)\(groupExtra.isEmpty ? "" : ", " + groupExtra) }
        """
    }

    @Test func udpListenerDefaults() throws {
        let config = try #require(load(udpDocument()))
        let l = config.listeners[0]
        #expect(l.protocolKind == .udp)
        #expect(l.udp == UDPListenerSettings(idleTimeout: 120 * Nanoseconds.second, maxFlows: 65_536))
        #expect(l.idleTimeout == 120 * Nanoseconds.second)
        #expect(l.proxyProtocol == nil)
        #expect(!l.acceptProxyProtocol)
        let g = config.targetGroups[0]
        #expect(g.algorithm == .flowHash)
        #expect(g.healthCheck?.protocolKind == .tcp)
        #expect(g.healthCheck?.port == nil)  // traffic port
    }

    @Test func idleTimeoutAndMaxFlows() throws {
        let config = try #require(load(udpDocument("idle_timeout: 5s\n    max_flows: 10")))
        #expect(config.listeners[0].udp == UDPListenerSettings(idleTimeout: 5 * Nanoseconds.second, maxFlows: 10))
        let errors = loadErrors(udpDocument("max_flows: 0"))
        #expect(errors.map(\.path) == ["listeners[0].max_flows"])
        #expect(errors.first?.message.hasPrefix("expected a number of flows from 1 to 10000000") == true)
    }

    @Test func tcpUDPKeepsTCPIdleTimeoutUnlessWritten() throws {
        let config = try #require(load(udpDocument(protocolName: "tcp_udp", group: "tcp_udp")))
        #expect(config.listeners[0].idleTimeout == 350 * Nanoseconds.second)
        #expect(config.listeners[0].udp?.idleTimeout == 120 * Nanoseconds.second)
        let written = try #require(load(udpDocument("idle_timeout: 30s", protocolName: "tcp_udp", group: "tcp_udp")))
        #expect(written.listeners[0].idleTimeout == 30 * Nanoseconds.second)
        #expect(written.listeners[0].udp?.idleTimeout == 30 * Nanoseconds.second)
    }

    @Test func maxFlowsIsAUDPKey() {
        let errors = loadErrors(listenerDocument("max_flows: 10"))
        #expect(errors.map(\.path) == ["listeners[0].max_flows"])
        #expect(errors.first?.message == "\"max_flows\" is a key of udp and tcp_udp listeners; this listener's protocol is tcp")
    }

    @Test func groupFit() {
        // udp listeners take udp and tcp_udp groups; tcp_udp listeners only tcp_udp groups.
        #expect(load(udpDocument(group: "tcp_udp")) != nil)
        #expect(
            loadErrors(udpDocument(group: "tcp")).map(\.message) == [
                "target group \"dns\" has protocol tcp, which does not fit a udp listener (it needs a udp or tcp_udp group)"
            ])
        #expect(
            loadErrors(udpDocument(protocolName: "tcp_udp", group: "udp")).map(\.message) == [
                "target group \"dns\" has protocol udp, which does not fit a tcp_udp listener (it needs a tcp_udp group)"
            ])
        #expect(load(listenerDocument("").replacingOccurrences(of: "protocol: tcp, targets", with: "protocol: tcp_udp, targets")) != nil)
    }

    @Test(arguments: [("off", nil), ("\"off\"", nil), ("v1", ProxyProtocolSetting.v1), ("v2", .v2)])
    func proxyProtocolOnTCPListeners(text: String, expected: ProxyProtocolSetting?) throws {
        let config = try #require(load(listenerDocument("proxy_protocol: \(text)")))
        #expect(config.listeners[0].proxyProtocol == expected)
    }

    @Test func proxyProtocolErrors() throws {
        #expect(loadErrors(listenerDocument("proxy_protocol: v3")).map(\.message) == ["expected off, v1 or v2, got \"v3\""])
        let v1 = loadErrors(udpDocument("proxy_protocol: v1"))
        #expect(v1.map(\.path) == ["listeners[0].proxy_protocol"])
        #expect(v1.first?.message == "PROXY protocol v1 has no form for UDP; udp needs v2")
        #expect(try #require(load(udpDocument("proxy_protocol: v2"))).listeners[0].proxyProtocol == .v2)
        let http = """
            listeners:
              - { name: web, protocol: http, bind: 127.0.0.1:8080, proxy_protocol: v2, default: { forward: app } }
            target_groups:
              - { name: app, protocol: http, proxy_protocol: v1 }
            """
        #expect(
            loadErrors(http).map { "\($0.path): \($0.message)" } == [
                "listeners[0].proxy_protocol: proxy_protocol sends the client's address to targets of tcp, tls, udp "
                    + "and tcp_udp listeners; http ones pass it in X-Forwarded-For",
                "target_groups[0].proxy_protocol: proxy_protocol sends the client's address to targets of tcp, tls, udp "
                    + "and tcp_udp groups; http ones pass it in X-Forwarded-For",
            ])
    }

    @Test func groupProxyProtocol() throws {
        let config = try #require(load(udpDocument(groupExtra: "proxy_protocol: v2")))
        #expect(config.targetGroups[0].proxyProtocol == .v2)
        #expect(try #require(load(groupDocument("proxy_protocol: v1"))).targetGroups[0].proxyProtocol == .v1)
    }

    @Test func acceptProxyProtocol() throws {
        #expect(try #require(load(listenerDocument("accept_proxy_protocol: true"))).listeners[0].acceptProxyProtocol)
        #expect(try #require(load(listenerDocument("accept_proxy_protocol: false"))).listeners[0].acceptProxyProtocol == false)
        let errors = loadErrors(udpDocument("accept_proxy_protocol: true"))
        #expect(errors.map(\.path) == ["listeners[0].accept_proxy_protocol"])
        #expect(
            errors.first?.message == "accept_proxy_protocol reads a header at the start of a TCP connection: it is for "
                + "tcp, tls, http and https listeners, not udp ones")
    }
}
