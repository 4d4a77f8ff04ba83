import Testing
@testable import SluiceRegistry

/// Where a watch resumes and what it delivers, without etcd.
@Suite struct EtcdWatchStateTests {
    private func put(_ key: String, _ rev: Int64) -> EtcdWatchEvent {
        .put(EtcdKeyValue(key: key, value: [], createRevision: rev, modRevision: rev, version: 1))
    }

    @Test func fromNowStartsAfterCreation() {
        var s = EtcdWatchState(startRevision: 0)
        var out: [EtcdWatchEvent] = []
        #expect(s.apply(.created(revision: 7), into: &out) == .read)
        #expect(out == [.progress(revision: 7)] && s.next == 8)
        out = []
        _ = s.apply(.events([put("a", 8), .delete(key: "b", modRevision: 9)]), into: &out)
        #expect(out == [put("a", 8), .delete(key: "b", modRevision: 9)] && s.next == 10)
    }

    @Test func resumeNeverRepeatsAndProgressAdvances() {
        var s = EtcdWatchState(startRevision: 5)
        var out: [EtcdWatchEvent] = []
        _ = s.apply(.created(revision: 9), into: &out)
        #expect(out == [.progress(revision: 4)] && s.next == 5)
        _ = s.apply(.events([put("a", 5), put("b", 6)]), into: &out)
        #expect(s.next == 7)
        #expect(s.lost("gone") == .disconnected(reason: "gone"))
        #expect(s.lost("still gone") == nil)
        out = []
        _ = s.apply(.created(revision: 9), into: &out)
        // A replayed event below the resume point is dropped.
        _ = s.apply(.events([put("b", 6), put("c", 7)]), into: &out)
        #expect(out == [.progress(revision: 6), put("c", 7)] && s.next == 8)
        _ = s.apply(.progress(revision: 20), into: &out)
        #expect(s.next == 21 && s.connected)
    }

    @Test func compactionEndsOtherCancelsReconnect() {
        var s = EtcdWatchState(startRevision: 2)
        var out: [EtcdWatchEvent] = []
        #expect(s.apply(.canceled(compactRevision: 0, reason: "x"), into: &out) == .reconnect("watch cancelled by etcd: x"))
        #expect(s.apply(.error(code: 14, message: "no leader"), into: &out) == .reconnect("etcd error 14: no leader"))
        #expect(s.apply(.canceled(compactRevision: 3, reason: ""), into: &out) == .end)
        #expect(out == [.compacted(compactRevision: 3)])
    }

    @Test func hostileRevisionsSaturate() {
        var s = EtcdWatchState(startRevision: -4)
        var out: [EtcdWatchEvent] = []
        _ = s.apply(.created(revision: .max), into: &out)
        #expect(s.next == .max)
        _ = s.apply(.progress(revision: .min), into: &out)
        #expect(s.next == .max)
    }
}
