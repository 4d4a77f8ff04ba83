import Foundation
import SluiceConfig
import Testing

/// Valid documents: what `ConfigLoader` builds from them, defaults included.
@Suite struct ConfigLoaderTests {
    @Test func fullConfigRoundTrips() throws {
        let yaml = """
            node:
              zone: zone-a
              workers: 4
              max_connections: 5_000
              shutdown_grace: 10s
            control:
              socket: /tmp/sluice.sock
              metrics: 127.0.0.1:9100
              state: /tmp/state.json
            listeners:
              - name: postgres
                protocol: tcp
                bind: 0.0.0.0:5432
                idle_timeout: 2m
                connect_timeout: 250ms
                proxy_protocol: off
                accept_proxy_protocol: false
                default: { forward: pg }
              - name: split
                protocol: tcp
                bind: "[::1]:6000"
                default:
                  forward:
                    - { group: pg, weight: 90 }
                    - group: pg-canary
                      weight: 10
            target_groups:
              - name: pg
                protocol: tcp
                algorithm: least_outstanding
                cross_zone: true
                slow_start: 0s
                health_check: off
                targets:
                  - { address: 127.0.0.1:9001, zone: zone-b, weight: 3 }
                  - { address: "[::1]:9002" }
              - name: pg-canary
                protocol: tcp
                targets: []
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: testFile)
        let expected = Config(
            node: NodeConfig(zone: "zone-a", workers: 4, maxConnections: 5000, shutdownGrace: 10 * Nanoseconds.second),
            control: ControlConfig(
                socket: "/tmp/sluice.sock",
                metrics: SocketAddressSpec(family: .inet, host: "127.0.0.1", port: 9100),
                state: "/tmp/state.json"),
            listeners: [
                ListenerConfig(
                    name: "postgres", protocolKind: .tcp,
                    bind: SocketAddressSpec(family: .inet, host: "0.0.0.0", port: 5432),
                    idleTimeout: 120 * Nanoseconds.second, connectTimeout: 250 * Nanoseconds.millisecond,
                    defaultAction: .forward([WeightedGroup(group: 0, weight: 1)])),
                ListenerConfig(
                    name: "split", protocolKind: .tcp,
                    bind: SocketAddressSpec(family: .inet6, host: "::1", port: 6000),
                    idleTimeout: ListenerConfig.defaultTCPIdleTimeout,
                    connectTimeout: ListenerConfig.defaultConnectTimeout,
                    defaultAction: .forward([
                        WeightedGroup(group: 0, weight: 90),
                        WeightedGroup(group: 1, weight: 10),
                    ])),
            ],
            targetGroups: [
                TargetGroupConfig(
                    name: "pg", protocolKind: .tcp, algorithm: .leastOutstanding,
                    targets: [
                        TargetConfig(
                            address: SocketAddressSpec(family: .inet, host: "127.0.0.1", port: 9001),
                            zone: "zone-b", weight: 3),
                        TargetConfig(
                            address: SocketAddressSpec(family: .inet6, host: "::1", port: 9002),
                            zone: "zone-a", weight: 1),
                    ]),
                TargetGroupConfig(
                    name: "pg-canary", protocolKind: .tcp, algorithm: .flowHash, targets: [],
                    healthCheck: HealthCheckConfig(protocolKind: .tcp)),
            ])
        #expect(config == expected)
    }

    @Test func minimalConfigGetsEveryDefault() throws {
        let config = try ConfigLoader.parse(yaml: minimalYAML, file: testFile)
        #expect(config.node == NodeConfig())
        #expect(config.node.workers == nil)
        #expect(config.node.maxConnections == 100_000)
        #expect(config.node.shutdownGrace == 30 * Nanoseconds.second)
        #expect(config.control == ControlConfig())
        #expect(config.listeners[0].idleTimeout == 350 * Nanoseconds.second)
        #expect(config.listeners[0].connectTimeout == 3 * Nanoseconds.second)
        #expect(config.listeners[0].defaultAction == .forward([WeightedGroup(group: 0, weight: 1)]))
        #expect(config.targetGroups[0].algorithm == .flowHash)
        #expect(
            config.targetGroups[0].targets == [
                TargetConfig(
                    address: SocketAddressSpec(family: .inet, host: "127.0.0.1", port: 9001),
                    zone: NodeConfig.defaultZone, weight: 1)
            ])
        #expect(config.groupIndex(named: "db") == 0)
    }

    @Test func targetsTakeTheNodeZoneAndWorkersAcceptAuto() throws {
        let yaml = """
            node: { zone: eu-west-1a, workers: auto }
            """ + "\n" + minimalYAML
        let config = try ConfigLoader.parse(yaml: yaml, file: testFile)
        #expect(config.node.workers == nil)
        #expect(config.targetGroups[0].targets[0].zone == "eu-west-1a")
    }

    @Test func nullSectionsMeanDefaults() throws {
        let yaml = """
            node:
            control:
            listeners:
              - { name: a, protocol: tcp, bind: "*:7000", default: { forward: g } }
            target_groups:
              - { name: g, protocol: tcp, targets: [] }
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: testFile)
        #expect(config.listeners[0].bind == SocketAddressSpec(family: .inet, host: "0.0.0.0", port: 7000))
        #expect(config.targetGroups[0].targets.isEmpty)
    }

    @Test func hostNamesAreResolved() throws {
        let yaml = minimalYAML.replacingOccurrences(of: "127.0.0.1:9001", with: "localhost:9001")
        let config = try ConfigLoader.parse(yaml: yaml, file: testFile)
        let address = config.targetGroups[0].targets[0].address
        #expect(address.port == 9001)
        #expect(address.host == "127.0.0.1" || address.host == "::1")
    }

    @Test func loadReadsAFile() throws {
        let path = try writeTemporaryFile(minimalYAML)
        let config = try ConfigLoader.load(path: path)
        #expect(config.listeners.map(\.name) == ["pg"])
    }

    @Test func loadReportsErrorsWithThePathAsFileName() throws {
        let path = try writeTemporaryFile("listeners: []\n")
        let errors = loadErrors(path: path)
        #expect(
            errors == [
                ConfigError(
                    file: path, line: 1, column: 12, path: "listeners",
                    message: "expected at least one listener")
            ])
    }
}
