import Foundation
import Testing

@testable import SluiceConfig

/// `registry:` (SPEC §10): loaded, defaults, and file:line:column errors.
@Suite struct RegistryConfigTests {
    @Test func absentMeansStandalone() throws {
        let config = try #require(load(groupDocument("")))
        #expect(config.registry == nil)
    }

    @Test func fullBlockLoads() throws {
        let yaml = """
            registry:
              etcd:
                endpoints: ["http://10.0.0.2:2379", "https://[::1]:2379"]
                prefix: /sluice/prod
                dial_timeout: 500ms
                lease_ttl: 3s

            """ + groupDocument("")
        let config = try #require(load(yaml))
        let registry = try #require(config.registry)
        #expect(registry.endpoints == ["http://10.0.0.2:2379", "https://[::1]:2379"])
        #expect(registry.prefix == "/sluice/prod")
        #expect(registry.dialTimeout == 500 * Nanoseconds.millisecond)
        #expect(registry.leaseTTLSeconds == 3)
        #expect(registry.tls == nil)
    }

    @Test func defaults() throws {
        let yaml = "registry: { etcd: { endpoints: [\"http://127.0.0.1:2379\"] } }\n" + groupDocument("")
        let config = try #require(load(yaml))
        let registry = try #require(config.registry)
        #expect(registry.prefix == RegistryConfig.defaultPrefix)
        #expect(registry.dialTimeout == RegistryConfig.defaultDialTimeout)
        #expect(registry.leaseTTLSeconds == RegistryConfig.defaultLeaseTTLSeconds)
    }

    @Test func errorsArePlaced() {
        let yaml = """
            registry:
              etcd:
                endpoints: ["ftp://x:1", "http://127.0.0.1:2379"]
                prefix: sluice/
                lease_ttl: 1500ms
                dial_timeout: 0s
                colour: blue

            """ + groupDocument("")
        let errors = loadErrors(yaml)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [
            "3:17 registry.etcd.endpoints[0]",
            "4:13 registry.etcd.prefix",
            "5:16 registry.etcd.lease_ttl",
            "6:19 registry.etcd.dial_timeout",
            "7:5 registry.etcd.colour",
        ])
        #expect(errors.first { $0.path == "registry.etcd.endpoints[0]" }?.message
            == "expected http://HOST:PORT or https://HOST:PORT, got \"ftp://x:1\"")
    }

    @Test func endpointShapes() {
        #expect(RegistryConfig.endpointProblem("http://127.0.0.1:2379") == nil)
        #expect(RegistryConfig.endpointProblem("https://[::1]:2379") == nil)
        #expect(RegistryConfig.endpointProblem("http://localhost:2379") == nil)
        #expect(RegistryConfig.endpointProblem("http://127.0.0.1:2379/") != nil)
        #expect(RegistryConfig.endpointProblem("http://127.0.0.1") != nil)
        #expect(RegistryConfig.endpointProblem("http://user@127.0.0.1:1") != nil)
        #expect(RegistryConfig.endpointProblem("etcd.example:2379") != nil)
        #expect(RegistryConfig.endpointProblem("http://etcd.invalid:2379") != nil)
    }

    @Test func endpointsAreRequired() {
        let errors = loadErrors("registry: { etcd: { prefix: /x } }\n" + groupDocument(""))
        #expect(errors.map(\.path) == ["registry.etcd.endpoints"])
        let empty = loadErrors("registry: { etcd: { endpoints: [] } }\n" + groupDocument(""))
        #expect(empty.map(\.path) == ["registry.etcd.endpoints"])
    }

    @Test func tlsFilesMustBeReadable() {
        let yaml = "registry: { etcd: { endpoints: [\"https://127.0.0.1:2379\"], tls: { ca_file: /nonexistent/ca.pem } } }\n"
            + groupDocument("")
        let errors = loadErrors(yaml)
        #expect(errors.map(\.path) == ["registry.etcd.tls.ca_file"])
        #expect(errors.first?.message.hasPrefix("cannot read /nonexistent/ca.pem") == true)
    }

    @Test func theFleetExampleLoads() throws {
        let path = #filePath.replacingOccurrences(of: "Tests/SluiceConfigTests/RegistryConfigTests.swift",
                                                  with: "etc/sluice/fleet-example.yaml")
        let config = try ConfigLoader.load(path: path)
        #expect(config.node.name == "lb-a1")
        #expect(config.registry?.prefix == "/sluice/prod")
        #expect(config.registry?.endpoints.count == 3)
    }
}
