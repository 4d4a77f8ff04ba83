import SluiceCore
import Testing

@testable import SluiceProxy

/// The per-worker UDP flow table, without sockets: keys from addresses, insert/find/remove
/// against a model, deletion in the middle of probe runs, growth, and the `max_flows` share.
@Suite struct UDPFlowTableTests {
    private let listener = SocketAddress(host: "192.0.2.53", port: 53)!

    private func v4(_ host: String, _ port: UInt16, socket: Int32 = 7, local: String = "192.0.2.53") -> UDPFlowKey {
        UDPFlowKey(client: SocketAddress(host: host, port: port)!, local: SocketAddress(host: local, port: 53)!,
                   socket: socket)!
    }

    @Test func keysTellAddressPortFamilyAndSocketApart() {
        #expect(v4("10.0.0.1", 53) == v4("10.0.0.1", 53))
        #expect(v4("10.0.0.1", 53) != v4("10.0.0.1", 54))
        #expect(v4("10.0.0.1", 53) != v4("10.0.0.2", 53))
        #expect(v4("10.0.0.1", 53, socket: 7) != v4("10.0.0.1", 53, socket: 8))
        #expect(v4("10.0.0.1", 53, local: "192.0.2.53") != v4("10.0.0.1", 53, local: "192.0.2.54"))
        let mapped = UDPFlowKey(client: SocketAddress(host: "::ffff:10.0.0.1", port: 53)!, local: listener, socket: 7)!
        #expect(mapped != v4("10.0.0.1", 53))
        let six = UDPFlowKey(client: SocketAddress(host: "2001:db8::1", port: 53)!,
                             local: SocketAddress(host: "2001:db8::53", port: 53)!, socket: 7)!
        #expect(six.high == 0x2001_0db8_0000_0000 && six.low == 1 && six.localLow == 0x53)
        #expect(UDPFlowKey(client: SocketAddress(), local: listener, socket: 7) == nil)  // no family: no key
    }

    @Test func insertFindRemove() {
        var t = UDPFlowTable(seed: 1)
        let a = v4("192.0.2.1", 1000)
        let b = v4("192.0.2.1", 1001)
        #expect(t.find(a) == nil)
        t.insert(a, slot: 3)
        t.insert(b, slot: 4)
        #expect(t.find(a) == 3 && t.find(b) == 4 && t.count == 2)
        #expect(t.remove(a) == 3)
        #expect(t.find(a) == nil && t.find(b) == 4 && t.count == 1)
        #expect(t.remove(a) == nil)
    }

    /// Random inserts and removes (many keys sharing probe runs in a small table) agree with a
    /// dictionary at every step; the table grows and stays at most half full.
    @Test func agreesWithAModelUnderChurn() {
        var t = UDPFlowTable(seed: 0xDEAD_BEEF)
        var model: [UInt64: Int32] = [:]
        var rng = SplitMix(state: 42)
        var nextSlot: Int32 = 0
        func key(_ n: UInt64) -> UDPFlowKey { UDPFlowKey(high: n % 3, low: n, tag: 1 << 32 | 2 << 16 | (n & 0xFFFF)) }
        for step in 0..<20_000 {
            let n = rng.next() % 3_000
            if model[n] != nil, rng.next() % 2 == 0 {
                #expect(t.remove(key(n)) == model.removeValue(forKey: n))
            } else if model[n] == nil {
                t.insert(key(n), slot: nextSlot)
                model[n] = nextSlot
                nextSlot += 1
            }
            if step % 997 == 0 {
                for (k, v) in model { #expect(t.find(key(k)) == v) }
            }
            #expect(t.count == model.count)
            #expect(t.count * 2 <= t.capacity)
        }
        for (k, v) in model { #expect(t.find(key(k)) == v) }
        for k in model.keys { t.remove(key(k)) }
        #expect(t.count == 0 && t.entries.isEmpty)
    }

    /// Removing from the middle of a long probe run keeps every later member findable (the
    /// backward shift), in a table that cannot grow past its first size.
    @Test func removalInsideProbeRunsKeepsTheRest() {
        var t = UDPFlowTable(seed: 9)
        let keys = (0..<31).map { UDPFlowKey(high: 0, low: UInt64($0), tag: 5) }
        for (i, k) in keys.enumerated() { t.insert(k, slot: Int32(i)) }
        #expect(t.capacity == UDPFlowTable.initialCapacity)
        for i in stride(from: 0, to: 31, by: 3) { t.remove(keys[i]) }
        for (i, k) in keys.enumerated() { #expect(t.find(k) == (i % 3 == 0 ? nil : Int32(i))) }
    }

    @Test func maxFlowsIsSharedOutRoundedUp() {
        #expect(UDPFlowTable.perWorkerLimit(maxFlows: 65_536, workers: 1) == 65_536)
        #expect(UDPFlowTable.perWorkerLimit(maxFlows: 65_536, workers: 3) == 21_846)
        #expect(UDPFlowTable.perWorkerLimit(maxFlows: 2, workers: 4) == 1)
        #expect(UDPFlowTable.perWorkerLimit(maxFlows: 0, workers: 0) == 1)
        #expect(UDPFlowTable.perWorkerLimit(maxFlows: Int.max, workers: 2) == Int.max / 2 + 1)
    }
}

private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
