import Foundation
import Testing
import SluiceRegistry
import SluiceTestSupport

/// Watches against a real etcd: changes from other clients, resuming after etcd went away,
/// compaction, hostile streams.
@Suite struct EtcdWatchTests {
    @Test func seesPutsAndDeletesFromOtherClients() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let other = try EtcdClient(endpoints: [etcd.endpoint])
        try other.put(key: "/s/targets/app/old", value: bytes("1"))
        let start = try client.range(key: "/s/targets/", prefix: true)
        let log = EventLog()
        let watch = try client.watch(prefix: "/s/targets/", startRevision: start.revision + 1) { log.append($0) }
        defer { watch.cancel() }
        try other.put(key: "/s/targets/app/a", value: bytes("A"))
        try other.put(key: "/s/outside", value: bytes("no"))
        try other.delete(key: "/s/targets/app/old")
        var expected = ["put /s/targets/app/a=A", "delete /s/targets/app/old"]
        if let r = try etcd.etcdctl(["put", "/s/targets/app/ctl", "C"]) {
            #expect(r.status == 0, "\(r.output)")
            expected.append("put /s/targets/app/ctl=C")
        }
        #expect(log.wait { _ in log.changes == expected }, "\(log.all)")
        #expect(watch.nextRevision == (try client.range(key: "/").revision) + 1)
    }

    @Test func fromNowSkipsHistory() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        try client.put(key: "/p/before", value: bytes("x"))
        let log = EventLog()
        let watch = try client.watch(prefix: "/p/", startRevision: 0) { log.append($0) }
        defer { watch.cancel() }
        #expect(log.wait { $0.contains { if case .progress = $0 { true } else { false } } })
        try client.put(key: "/p/after", value: bytes("y"))
        #expect(log.wait { _ in log.changes == ["put /p/after=y"] }, "\(log.all)")
    }

    @Test(arguments: [false, true])
    func resumesAfterEtcdRestart(killed: Bool) throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint], dialTimeout: .milliseconds(500))
        let log = EventLog()
        let watch = try client.watch(prefix: "/r/", startRevision: 1) { log.append($0) }
        defer { watch.cancel() }
        try client.put(key: "/r/1", value: bytes("one"))
        #expect(log.wait { _ in log.changes == ["put /r/1=one"] })
        if killed { etcd.kill() } else { etcd.stop() }
        #expect(log.wait { $0.contains { if case .disconnected = $0 { true } else { false } } }, "\(log.all)")
        try etcd.restart()
        // Written the moment etcd is back, maybe before the watch has reconnected: still delivered.
        try client.put(key: "/r/2", value: bytes("two"))
        try client.delete(key: "/r/1")
        #expect(log.wait(seconds: 15) { _ in log.changes == ["put /r/1=one", "put /r/2=two", "delete /r/1"] }, "\(log.all)")
        let disconnects = log.all.filter { if case .disconnected = $0 { true } else { false } }
        #expect(disconnects.count == 1, "\(log.all)")
    }

    @Test func reportsCompactionOfTheResumeRevision() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        for i in 0..<5 { try client.put(key: "/c/\(i)", value: bytes("v")) }
        let rev = try client.range(key: "/c/", prefix: true).revision
        try etcd.compact(revision: rev)
        let log = EventLog()
        let watch = try client.watch(prefix: "/c/", startRevision: 2) { log.append($0) }
        defer { watch.cancel() }
        #expect(log.wait { $0.contains(.compacted(compactRevision: rev)) }, "\(log.all)")
        #expect(log.changes.isEmpty)
        // The caller's recovery: re-read, watch from the read's revision + 1.
        let again = try client.range(key: "/c/", prefix: true)
        #expect(again.kvs.count == 5)
        let log2 = EventLog()
        let watch2 = try client.watch(prefix: "/c/", startRevision: again.revision + 1) { log2.append($0) }
        defer { watch2.cancel() }
        try client.put(key: "/c/new", value: bytes("n"))
        #expect(log2.wait { _ in log2.changes == ["put /c/new=n"] }, "\(log2.all)")
    }

    @Test func compactionWhileDisconnected() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint], dialTimeout: .milliseconds(300))
        let log = EventLog()
        let watch = try client.watch(prefix: "/d/", startRevision: 1) { log.append($0) }
        defer { watch.cancel() }
        try client.put(key: "/d/1", value: bytes("1"))
        #expect(log.wait { _ in log.changes.count == 1 })
        // etcd comes back on another client port only: the watch cannot reach it while the
        // history moves on and is compacted.
        let side = try TestSocket.freePort()
        try etcd.restart(onClientPort: side)
        #expect(log.wait { $0.contains { if case .disconnected = $0 { true } else { false } } })
        let sideClient = try EtcdClient(endpoints: ["http://127.0.0.1:\(side)"])
        try sideClient.put(key: "/d/2", value: bytes("2"))
        let rev = try sideClient.put(key: "/d/2", value: bytes("3"))
        try etcd.compact(revision: rev, port: side)
        try etcd.restart()
        #expect(log.wait(seconds: 15) { $0.contains(.compacted(compactRevision: rev)) }, "\(log.all)")
        #expect(log.changes == ["put /d/1=1"])
    }

    @Test func deliversProgressNotifications() throws {
        let etcd = try EtcdProcess(extraArguments: ["--experimental-watch-progress-notify-interval", "500ms"])
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let log = EventLog()
        let watch = try client.watch(prefix: "/q/", startRevision: 0) { log.append($0) }
        defer { watch.cancel() }
        try client.put(key: "/elsewhere", value: bytes("x"))
        let rev = try client.range(key: "/").revision
        // A notification after the write outside the prefix moves the resume point past it.
        #expect(log.wait { $0.contains(.progress(revision: rev)) }, "\(log.all)")
        #expect(watch.nextRevision == rev + 1)
    }

    @Test func cancelStopsPromptlyEvenWhileEtcdIsAway() throws {
        let closed = try TestSocket.freePort()
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(closed)"])
        let log = EventLog()
        let watch = try client.watch(prefix: "/x/", startRevision: 0) { log.append($0) }
        #expect(log.wait { $0.contains { if case .disconnected = $0 { true } else { false } } })
        let t0 = Date()
        watch.cancel()
        #expect(Date().timeIntervalSince(t0) < 1)
        let n = log.all.count
        usleep(300_000)  // nothing may arrive after cancel returned
        #expect(log.all.count == n)
    }

    @Test func hostileStreamDisconnectsWithoutCrashing() throws {
        let server = try FixtureProcess(script: "etcd_garbage.py", arguments: ["watchgarbage"])
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(server.port)"])
        let log = EventLog()
        let watch = try client.watch(prefix: "/x/", startRevision: 0) { log.append($0) }
        defer { watch.cancel() }
        #expect(log.wait { $0.contains { if case .disconnected(let r) = $0 { r.contains("BOOM") } else { false } } }, "\(log.all)")
        #expect(log.changes.isEmpty)
    }
}
