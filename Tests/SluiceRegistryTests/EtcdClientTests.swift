import Foundation
import Testing
import SluiceRegistry
import SluiceTestSupport

/// Every call of `EtcdClient` against a real etcd of its own.
@Suite struct EtcdClientTests {
    @Test func putRangeDeleteWithRevisions() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let r1 = try client.put(key: "/s/targets/app/10.0.0.1:80", value: bytes(#"{"zone":"a"}"#))
        let r2 = try client.put(key: "/s/targets/app/10.0.0.2:80", value: bytes(#"{"zone":"b"}"#))
        try client.put(key: "/s/targetsX", value: bytes("outside"))
        #expect(r2 == r1 + 1)
        let one = try client.range(key: "/s/targets/app/10.0.0.1:80")
        #expect(one.kvs.count == 1)
        #expect(one.kvs.first?.value == bytes(#"{"zone":"a"}"#))
        #expect(one.kvs.first?.createRevision == r1 && one.kvs.first?.version == 1 && one.kvs.first?.lease == 0)
        let all = try client.range(key: "/s/targets/", prefix: true)
        #expect(all.kvs.map(\.key) == ["/s/targets/app/10.0.0.1:80", "/s/targets/app/10.0.0.2:80"])
        #expect(all.revision == r2 + 1)
        let missing = try client.range(key: "/s/none")
        #expect(missing.kvs.isEmpty)
        let d = try client.delete(key: "/s/targets/", prefix: true)
        #expect(d.deleted == 2 && d.revision == all.revision + 1)
        #expect(try client.delete(key: "/s/targets/app/10.0.0.1:80").deleted == 0)
        #expect(try client.range(key: "/s/targetsX").kvs.count == 1)
    }

    @Test func txnCreateIfAbsentThenCompareFails() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let create = EtcdTxn(compare: [EtcdCompare(key: "/s/leader/scaling", .createRevision(0), .equal)],
                             success: [.put("/s/leader/scaling", bytes("node-a"))],
                             failure: [.range("/s/leader/scaling")])
        let first = try client.txn(create)
        #expect(first.succeeded)
        guard case .put(let rev) = first.results.first else { Issue.record("no put result: \(first)"); return }
        #expect(rev == first.revision)
        var second = create
        second.success = [.put("/s/leader/scaling", bytes("node-b"))]
        let lost = try client.txn(second)
        #expect(!lost.succeeded)
        guard case .range(let holder) = lost.results.first else { Issue.record("no range result: \(lost)"); return }
        #expect(holder.kvs.first?.value == bytes("node-a"))
        let modRevision = try #require(holder.kvs.first?.modRevision)
        // Compare-and-delete: a stale mod revision fails, the right one deletes.
        let stale = try client.txn(EtcdTxn(compare: [EtcdCompare(key: "/s/leader/scaling", .modRevision(modRevision - 1), .equal)],
                                           success: [.delete("/s/leader/scaling")]))
        #expect(!stale.succeeded && stale.results.isEmpty)
        let byValue = try client.txn(EtcdTxn(
            compare: [EtcdCompare(key: "/s/leader/scaling", .value(bytes("node-a")), .equal),
                      EtcdCompare(key: "/s/leader/scaling", .modRevision(modRevision), .equal),
                      EtcdCompare(key: "/s/leader/scaling", .version(0), .greater),
                      EtcdCompare(key: "/s/leader/scaling", .lease(0), .equal),
                      EtcdCompare(key: "/s/leader/scaling", .createRevision(modRevision + 100), .less),
                      EtcdCompare(key: "/s/leader/scaling", .value(bytes("x")), .notEqual)],
            success: [.delete("/s/leader/scaling")]))
        #expect(byValue.succeeded)
        #expect(byValue.results == [.delete(deleted: 1)])
        #expect(try client.range(key: "/s/leader/scaling").kvs.isEmpty)
    }

    @Test func leaseExpiryDeletesBoundKeys() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let lease = try client.grantLease(ttl: 2)
        #expect(lease != 0)
        try client.put(key: "/s/nodes/a", value: bytes("{}"), lease: lease)
        #expect(try client.range(key: "/s/nodes/a").kvs.first?.lease == lease)
        let started = Date()
        #expect(try eventually(seconds: 15) { try client.range(key: "/s/nodes/a").kvs.isEmpty })
        #expect(Date().timeIntervalSince(started) > 1)
        #expect(try client.keepAlive(lease: lease) == 0)
        #expect(throws: EtcdError.self) { try client.put(key: "/s/nodes/b", value: [], lease: lease) }
    }

    @Test func keepAliveKeepsKeysAndRevokeDeletesThem() throws {
        let etcd = try EtcdProcess()
        let client = try EtcdClient(endpoints: [etcd.endpoint])
        let lease = try client.grantLease(ttl: 2)
        try client.put(key: "/s/nodes/a", value: bytes("{}"), lease: lease)
        let until = Date().addingTimeInterval(5)
        while Date() < until {
            let ttl = try client.keepAlive(lease: lease)
            #expect(ttl >= 1)
            #expect(try client.range(key: "/s/nodes/a").kvs.count == 1)
            usleep(400_000)  // renewal period of the test, well inside the TTL
        }
        try client.revokeLease(lease)
        #expect(try client.range(key: "/s/nodes/a").kvs.isEmpty)
        #expect(throws: EtcdError.server(code: EtcdError.codeNotFound, message: "etcdserver: requested lease not found")) {
            try client.revokeLease(lease)
        }
    }

    @Test func failoverPastClosedEndpoint() throws {
        let etcd = try EtcdProcess()
        let closed = try TestSocket.freePort()
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(closed)", etcd.endpoint], dialTimeout: .seconds(1))
        for i in 0..<5 { try client.put(key: "/k\(i)", value: bytes("v")) }
        #expect(try client.range(key: "/k", prefix: true).kvs.count == 5)
    }

    @Test func failoverToNextEndpointWhenOneDies() throws {
        let a = try EtcdProcess(name: "a")
        let b = try EtcdProcess(name: "b")
        let client = try EtcdClient(endpoints: [a.endpoint, b.endpoint], dialTimeout: .seconds(1))
        try client.put(key: "/k", value: bytes("on a"))
        a.kill()
        // The idle connection to a is dead: the call goes on to b (a separate store).
        #expect(try client.range(key: "/k").kvs.isEmpty)
        try client.put(key: "/k", value: bytes("on b"))
        #expect(try client.range(key: "/k").kvs.first?.value == bytes("on b"))
    }

    @Test func dialTimeoutIsBounded() throws {
        // A listener with a full accept queue: Linux drops further SYNs, so a connect hangs.
        let (fd, port) = try TestSocket.listen(backlog: 0)
        defer { close(fd) }
        let filler = try TestSocket.connect(port: port)
        defer { close(filler) }
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(port)"], dialTimeout: .milliseconds(300),
                                    requestTimeout: .seconds(3))
        let started = Date()
        #expect(throws: EtcdError.self) { try client.range(key: "/k") }
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.25 && elapsed < 2.0, "took \(elapsed) s")

        // With a real etcd behind it, the blackholed endpoint costs one dial timeout.
        let etcd = try EtcdProcess()
        let both = try EtcdClient(endpoints: ["http://127.0.0.1:\(port)", etcd.endpoint], dialTimeout: .milliseconds(300))
        let t0 = Date()
        try both.put(key: "/k", value: bytes("v"))
        #expect(Date().timeIntervalSince(t0) < 2.0)
    }

    @Test func noEndpointIsUnavailable() throws {
        let closed = try TestSocket.freePort()
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(closed)"])
        do {
            _ = try client.range(key: "/k")
            Issue.record("answered")
        } catch {
            guard case .unavailable = error else { Issue.record("\(error)"); return }
        }
    }

    @Test func badEndpointsAreRefused() {
        for e in ["ftp://127.0.0.1:2379", "127.0.0.1:2379", "http://etcd.example:2379", "http://127.0.0.1", "http://127.0.0.1:99999"] {
            #expect(throws: EtcdError.self, "\(e)") { try EtcdClient(endpoints: [e]) }
        }
        #expect(throws: EtcdError.self) { try EtcdClient(endpoints: []) }
        #expect((try? EtcdClient(endpoints: ["http://[::1]:2379/", "http://localhost:2379"])) != nil)
    }

    @Test(arguments: ["badjson", "notobject", "badbase64", "badint", "badhttp", "badchunk", "hugechunk", "html404", "binary"])
    func malformedAnswersAreMalformed(_ mode: String) throws {
        let server = try FixtureProcess(script: "etcd_garbage.py", arguments: [mode])
        let client = try EtcdClient(endpoints: ["http://127.0.0.1:\(server.port)"], requestTimeout: .seconds(3))
        do {
            let r = try client.range(key: "/k", prefix: true)
            Issue.record("decoded \(r)")
        } catch {
            guard case .malformed = error else { Issue.record("\(mode): \(error)"); return }
        }
        // The other decoders read other fields: the answers whose only fault is a key or a
        // revision may be readable to them, but none may crash.
        let readable = ["badbase64", "badint"].contains(mode)
        let k = Result { () throws(EtcdError) in try client.keepAlive(lease: 1) }
        let t = Result { () throws(EtcdError) in try client.txn(EtcdTxn(compare: [], success: [])) }
        if !readable {
            #expect(throws: EtcdError.self) { try k.get() }
            #expect(throws: EtcdError.self) { try t.get() }
        }
    }
}
