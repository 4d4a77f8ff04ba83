import Testing
@testable import SluiceRegistry

/// The gateway's answers as etcd 3.4.23 sent them (captured with curl), and hostile variants.
@Suite struct EtcdWireTests {
    private func object(_ text: String) throws -> EtcdJSON.Object {
        try EtcdWire.answer(status: 200, body: Array(text.utf8))
    }

    @Test func rangeDecodesKeysValuesAndRevisions() throws {
        let text = #"{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy","lease":"7587886013165011211"}],"count":"1"}"#
        let r = try EtcdWire.range(try object(text))
        #expect(r.revision == 2)
        #expect(r.kvs == [EtcdKeyValue(key: "foo", value: Array("bar".utf8), createRevision: 2, modRevision: 2, version: 1,
                                       lease: 7_587_886_013_165_011_211)])
    }

    @Test func emptyRangeHasNoKeys() throws {
        let r = try EtcdWire.range(try object(#"{"header":{"revision":"9"}}"#))
        #expect(r == EtcdRange(kvs: [], revision: 9))
    }

    @Test func deleteAndTxnAnswers() throws {
        let d = try EtcdWire.deleted(try object(#"{"header":{"revision":"3"},"deleted":"1"}"#))
        #expect(d.deleted == 1 && d.revision == 3)
        let ok = try EtcdWire.txn(try object(#"{"header":{"revision":"4"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"4"}}}]}"#))
        #expect(ok == EtcdTxnResult(succeeded: true, revision: 4, results: [.put(revision: 4)]))
        let failed = try EtcdWire.txn(try object(#"{"header":{"revision":"4"},"responses":[{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"Zm9v","create_revision":"4","mod_revision":"4","version":"1","value":"YmFy"}],"count":"1"}},{"response_delete_range":{"header":{"revision":"4"}}}]}"#))
        #expect(!failed.succeeded)
        #expect(failed.results == [
            .range(EtcdRange(kvs: [EtcdKeyValue(key: "foo", value: Array("bar".utf8), createRevision: 4, modRevision: 4, version: 1)], revision: 4)),
            .delete(deleted: 0),
        ])
    }

    @Test func serverErrorsCarryCodeAndMessage() {
        let body = Array(#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#.utf8)
        #expect(throws: EtcdError.server(code: 5, message: "etcdserver: requested lease not found")) {
            try EtcdWire.answer(status: 404, body: body)
        }
        #expect(throws: EtcdError.malformed("HTTP 404: \"Not Found\"")) {
            try EtcdWire.answer(status: 404, body: Array("Not Found\n".utf8))
        }
    }

    @Test func leaseAnswers() throws {
        let g = try EtcdWire.grant(try object(#"{"header":{"revision":"2"},"ID":"2324035872303395083","TTL":"5"}"#))
        #expect(g.id == 2_324_035_872_303_395_083 && g.ttl == 5)
        let alive = #"{"result":{"header":{"revision":"6"},"ID":"2324035872303395093","TTL":"5"}}"# + "\n"
        #expect(try EtcdWire.keepAlive(status: 200, body: Array(alive.utf8)) == 5)
        let expired = #"{"result":{"header":{"revision":"6"},"ID":"123"}}"# + "\n"
        #expect(try EtcdWire.keepAlive(status: 200, body: Array(expired.utf8)) == 0)
        #expect(throws: EtcdError.malformed("lease grant without an ID")) { try EtcdWire.grant(try object(#"{"TTL":"5"}"#)) }
    }

    @Test(arguments: [
        #"{"header":{"revision":"x"}}"#,
        #"{"header":{"revision":"99999999999999999999"}}"#,
        #"{"header":{"revision":1e300}}"#,
        #"{"header":"no"}"#,
        #"{"kvs":{"key":"Zm9v"}}"#,
        #"{"kvs":[1]}"#,
        #"{"kvs":[{"key":"!!!"}]}"#,
        #"{"kvs":[{"key":5}]}"#,
        #"[1,2]"#,
        #"{"header":{"revision":"2""#,
        "\u{0}\u{ff}",
    ])
    func hostileRangesAreMalformed(_ text: String) {
        do {
            let r = try EtcdWire.range(try EtcdWire.answer(status: 200, body: Array(text.utf8)))
            Issue.record("decoded \(r)")
        } catch {
            guard case .malformed = error else { Issue.record("not malformed: \(error)"); return }
        }
    }

    @Test func numbersAreAcceptedWhenExact() throws {
        let r = try EtcdWire.range(try object(#"{"header":{"revision":42},"kvs":[{"key":"YQ==","version":9223372036854775807}]}"#))
        #expect(r.revision == 42 && r.kvs.first?.version == Int64.max)
    }

    @Test func requestsEncodeBase64AndStrings() throws {
        let put = String(decoding: EtcdWire.put(key: "foo", value: Array("bar".utf8), lease: 12), as: UTF8.self)
        #expect(put == #"{"key":"Zm9v","lease":"12","value":"YmFy"}"#)
        let range = String(decoding: EtcdWire.range(key: "a/", prefix: true), as: UTF8.self)
        #expect(range == #"{"key":"YS8=","range_end":"YTA="}"#)
        #expect(EtcdWire.prefixEnd([0x61, 0xff]) == [0x62])
        #expect(EtcdWire.prefixEnd([0xff, 0xff]) == [0])
        #expect(EtcdWire.prefixEnd([]) == [0])
        let txn = String(decoding: EtcdWire.txn(EtcdTxn(compare: [EtcdCompare(key: "k", .createRevision(0), .equal)],
                                                        success: [.put("k", [1])], failure: [.range("k")])), as: UTF8.self)
        #expect(txn == #"{"compare":[{"create_revision":"0","key":"aw==","result":"EQUAL","target":"CREATE"}],"failure":[{"request_range":{"key":"aw=="}}],"success":[{"request_put":{"key":"aw==","value":"AQ=="}}]}"#)
    }

    @Test func deepNestingIsRefusedNotOverflowed() {
        let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        #expect(throws: EtcdError.self) { try EtcdWire.answer(status: 200, body: Array(deep.utf8)) }
        var s = EtcdWatchStream()
        #expect(throws: EtcdError.self) { try s.feed(Array((#"{"result":"# + deep + "}\n").utf8)) }
    }
}
