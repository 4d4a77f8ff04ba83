import Testing
@testable import SluiceRegistry

/// The watch stream as etcd 3.4.23's gateway sends it (captured with curl), split every way.
@Suite struct EtcdWatchStreamTests {
    static let captured = [
        #"{"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"6","raft_term":"2"},"created":true}}"#,
        #"{"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"6","raft_term":"2"},"events":[{"kv":{"key":"Zm9v","create_revision":"4","mod_revision":"5","version":"2","value":"YmF6"}},{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"6"}}]}}"#,
        #"{"result":{"header":{"revision":"9"}}}"#,
        #"{"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","raft_term":"2"},"canceled":true,"compact_revision":"3"}}"#,
        #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#,
    ].joined(separator: "\n") + "\n"

    static let expected: [EtcdWatchMessage] = [
        .created(revision: 6),
        .events([
            .put(EtcdKeyValue(key: "foo", value: Array("baz".utf8), createRevision: 4, modRevision: 5, version: 2)),
            .delete(key: "foo", modRevision: 6),
        ]),
        .progress(revision: 9),
        .canceled(compactRevision: 3, reason: ""),
        .error(code: 14, message: "etcdserver: no leader"),
    ]

    @Test func decodesCapturedStream() throws {
        var s = EtcdWatchStream()
        #expect(try s.feed(Array(Self.captured.utf8)) == Self.expected)
    }

    @Test func anySplitGivesTheSameMessages() throws {
        let bytes = Array(Self.captured.utf8)
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            var s = EtcdWatchStream()
            var got = try s.feed(bytes[..<cut])
            got += try s.feed(bytes[cut...])
            #expect(got == Self.expected, "split at \(cut)")
        }
        var s = EtcdWatchStream()
        var got: [EtcdWatchMessage] = []
        for b in bytes { got += try s.feed([b]) }
        #expect(got == Self.expected)
    }

    @Test func hostileLinesAreMalformed() {
        for line in [#"{"result":{"events":[{"type":"EXPLODE","kv":{}}]}}"#, #"{"result":{"events":[{"kv":{"key":"%%"}}]}}"#,
                     #"{"result":{"canceled":"yes"}}"#, "garbage", #"{"error":{"grpc_code":"x"}}"#] {
            var s = EtcdWatchStream()
            #expect(throws: EtcdError.self) { try s.feed(Array((line + "\n").utf8)) }
        }
    }

    @Test func blankLinesAreSkipped() throws {
        var s = EtcdWatchStream()
        #expect(try s.feed(Array("\r\n \n".utf8)).isEmpty)
    }
}
