import Foundation
import SluiceControlPlane
import SluiceRegistry
import SluiceTestSupport
import Synchronization
import Testing

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// `FleetLeader` against a real etcd: one leader at a time, release on stop, takeover when the
/// holder's lease expires.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct FleetLeaderTests {
    static let key = "/sluice/test/leader/scaling"

    @Test func oneLeaderAndReleaseOnStop() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let changes = Mutex<[String]>([])
        let a = try FleetLeader(client: client, key: Self.key, identity: "a", ttlSeconds: 2) { l in
            changes.withLock { $0.append("a:\(l)") }
        }
        let b = try FleetLeader(client: client, key: Self.key, identity: "b", ttlSeconds: 2) { l in
            changes.withLock { $0.append("b:\(l)") }
        }
        try a.start()
        #expect(eventually(5) { a.isLeader })
        try b.start()
        // b has had at least one round: it sees a's key and stays a candidate.
        #expect(eventually(5) { (try? client.range(key: Self.key).kvs.first?.value) == Array("a".utf8) })
        // For longer than b's round (ttl/3), b never leads while a holds the key.
        #expect(!eventually(1) { b.isLeader || !a.isLeader })
        a.stop()
        #expect(!a.isLeader)
        #expect(eventually(5) { b.isLeader }, "b takes over once a released the key")
        #expect(try client.range(key: Self.key).kvs.first?.value == Array("b".utf8))
        b.stop()
        #expect(try client.range(key: Self.key).kvs.isEmpty, "released on stop")
        #expect(changes.withLock { $0 } == ["a:true", "a:false", "b:true", "b:false"])
    }

    @Test func takesOverWhenTheHoldersLeaseExpires() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        // A holder that died: its key on a lease nobody renews.
        let dead = try client.grantLease(ttl: 2)
        try client.put(key: Self.key, value: Array("dead".utf8), lease: dead)
        let b = try FleetLeader(client: client, key: Self.key, identity: "b", ttlSeconds: 2)
        try b.start()
        defer { b.stop() }
        let started = Date()
        #expect(!b.isLeader)
        #expect(eventually(10) { b.isLeader }, "b leads once the dead holder's lease expired")
        #expect(Date().timeIntervalSince(started) >= 1, "not before the lease expired")
        #expect(try client.range(key: Self.key).kvs.first?.value == Array("b".utf8))
    }

    @Test func stepsDownWhenEtcdGoesAway() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint], dialTimeout: .milliseconds(300),
                                    requestTimeout: .seconds(1))
        let a = try FleetLeader(client: client, key: Self.key, identity: "a", ttlSeconds: 2)
        try a.start()
        defer { a.stop() }
        #expect(eventually(5) { a.isLeader })
        etcd.stop()
        #expect(eventually(5) { !a.isLeader }, "a cannot confirm its hold: no leader rather than two")
        try etcd.restart()
        #expect(eventually(15) { a.isLeader })
    }
}
