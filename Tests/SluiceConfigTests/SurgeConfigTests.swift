import Foundation
import Testing

@testable import SluiceConfig

/// `max_per_target` and `surge_queue` (SPEC §12): loaded, defaults, ranges, udp refusal, and
/// file:line:column errors.
@Suite struct SurgeConfigTests {
    @Test func absentMeansUnlimitedAndNoQueue() throws {
        let config = try #require(load(groupDocument("targets: []")))
        #expect(config.targetGroups[0].maxPerTarget == 0)
        #expect(config.targetGroups[0].surgeQueue == SurgeQueueConfig())
        #expect(config.targetGroups[0].surgeQueue.size == 0)
        #expect(config.targetGroups[0].surgeQueue.timeout == 5 * Nanoseconds.second)
    }

    @Test func bothKeysLoad() throws {
        let config = try #require(load(httpGroupDocument("max_per_target: 100\nsurge_queue: { size: 1024, timeout: 250ms }")))
        let g = config.targetGroups[0]
        #expect(g.maxPerTarget == 100)
        #expect(g.surgeQueue.size == 1024)
        #expect(g.surgeQueue.timeout == 250 * Nanoseconds.millisecond)
        let tcp = try #require(load(groupDocument("surge_queue: { size: 1 }")))
        #expect(tcp.targetGroups[0].surgeQueue == SurgeQueueConfig(size: 1, timeout: SurgeQueueConfig.defaultTimeout))
        let limits = try #require(load(groupDocument("max_per_target: 1000000\nsurge_queue: { size: 1000000, timeout: 1h }")))
        #expect(limits.targetGroups[0].maxPerTarget == 1_000_000)
        #expect(limits.targetGroups[0].surgeQueue.timeout == 3_600 * Nanoseconds.second)
    }

    @Test func outOfRangeValuesNameTheirPlace() {
        let errors = loadErrors(groupDocument("max_per_target: -1\nsurge_queue: { size: 1000001, timeout: 0s, colour: red }"))
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == [
            "6:21 target_groups[0].max_per_target",
            "7:26 target_groups[0].surge_queue.size",
            "7:44 target_groups[0].surge_queue.timeout",
            "7:48 target_groups[0].surge_queue.colour",
        ], "\(errors)")
        #expect(loadErrors(groupDocument("surge_queue: { timeout: 2h }")).map(\.path) == ["target_groups[0].surge_queue.timeout"])
        #expect(loadErrors(groupDocument("max_per_target: lots")).map(\.path) == ["target_groups[0].max_per_target"])
        #expect(loadErrors(groupDocument("surge_queue: 10")).map(\.path) == ["target_groups[0].surge_queue"])
    }

    @Test func udpGroupsRefuseBoth() {
        let yaml = """
            listeners:
              - { name: dns, protocol: udp, bind: 127.0.0.1:53, default: { forward: d } }
            target_groups:
              - name: d
                protocol: udp
                max_per_target: 3
                surge_queue: { size: 4 }
            """
        let errors = loadErrors(yaml)
        #expect(errors.map(\.path) == ["target_groups[0].max_per_target", "target_groups[0].surge_queue"], "\(errors)")
        #expect(errors.first?.message.contains("not supported on udp groups") == true)
    }
}
