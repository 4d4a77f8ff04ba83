import Foundation
import Testing

@testable import SluiceEvents

/// The outbox file format: records round-trip, a torn tail is detected, replay follows the marks.
@Suite struct OutboxRecordTests {
    let records: [OutboxRecord] = [
        .event(id: "a-1", json: Array(#"{"id":"a-1","type":"reload"}"#.utf8)),
        .event(id: "a-2", json: Array(#"{"id":"a-2","type":"registration"}"#.utf8)),
        .delivered(id: "a-1"),
        .dead(id: "a-2", attempts: 3, failedAt: "2026-01-01T00:00:00.000Z", error: "HTTP 500"),
        .event(id: "a-3", json: Array("{}".utf8)),
        .revived(id: "a-2"),
    ]

    @Test func crc32KnownValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func roundTrip() {
        let bytes = records.flatMap { $0.encoded() }
        let parsed = OutboxRecord.parse(bytes)
        #expect(parsed.records == records)
        #expect(parsed.soundLength == bytes.count)
    }

    @Test func tornTailIsIgnoredAtEveryCut() {
        let bytes = records.flatMap { $0.encoded() }
        var boundaries = [0]
        for r in records { boundaries.append(boundaries.last! + r.encoded().count) }
        for cut in 0..<bytes.count {
            let parsed = OutboxRecord.parse(Array(bytes[..<cut]))
            let whole = boundaries.filter { $0 <= cut }.count - 1
            #expect(parsed.records == Array(records.prefix(whole)), "cut at \(cut)")
            #expect(parsed.soundLength == boundaries[whole])
        }
    }

    @Test func corruptionStopsTheParse() {
        var bytes = records.flatMap { $0.encoded() }
        let second = records[0].encoded().count
        bytes[second + 12] ^= 0x01  // a payload byte of the second record
        let parsed = OutboxRecord.parse(bytes)
        #expect(parsed.records == [records[0]])
        #expect(parsed.soundLength == second)
        #expect(OutboxRecord.parse([0xE5, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]).records.isEmpty)
    }

    @Test func replayFollowsTheMarks() {
        let state = OutboxState(replaying: records)
        // a-1 delivered; a-2 died and was revived (appended again before the revive mark)? Not here: only revived.
        #expect(state.pending.map(\.id) == ["a-3"])
        #expect(state.dead.isEmpty)
        var s = OutboxState(replaying: Array(records.prefix(4)))
        #expect(s.pendingCount == 0 && s.dead.map(\.id) == ["a-2"] && s.dead.first?.attempts == 3)
        s.apply(.event(id: "a-2", json: s.dead[0].json))
        s.apply(.revived(id: "a-2"))
        #expect(s.pending.map(\.id) == ["a-2"] && s.dead.isEmpty)
    }

    @Test func compactionKeepsWhatMatters() {
        var s = OutboxState()
        for i in 0..<300 {
            s.apply(.event(id: "e-\(i)", json: [UInt8(i & 0xFF)]))
            if i < 290 { s.apply(.delivered(id: "e-\(i)")) }
        }
        s.apply(.dead(id: "e-290", attempts: 2, failedAt: "t", error: "x"))
        #expect(s.wantsCompaction)
        let rewritten = s.compacted()
        let replayed = OutboxState(replaying: rewritten)
        #expect(replayed.pending.map(\.id) == s.pending.map(\.id))
        #expect(replayed.dead == s.dead)
        s.didCompact()
        #expect(!s.wantsCompaction && s.records == rewritten.count)
    }

    @Test func fileSurvivesATornAppend() throws {
        let dir = NSTemporaryDirectory() + "sluice-outbox-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let f = try OutboxFile(directory: dir, name: "r")
            try f.append(Array(records.prefix(2)), sync: true)
        }
        // A crash mid-write: half a record at the end.
        let handle = try #require(FileHandle(forWritingAtPath: dir + "/r.outbox"))
        handle.seekToEndOfFile()
        handle.write(Data(records[2].encoded().prefix(7)))
        handle.closeFile()
        let f = try OutboxFile(directory: dir, name: "r")
        let loaded = try f.load()
        #expect(loaded.records == Array(records.prefix(2)))
        #expect(loaded.droppedBytes == 7)
        try f.append([records[2]], sync: false)
        let again = try OutboxFile(directory: dir, name: "r").load()
        #expect(again.records == Array(records.prefix(3)) && again.droppedBytes == 0)
        try f.rewrite([records[1]])
        try f.append([records[4]], sync: true)
        #expect(try OutboxFile(directory: dir, name: "r").load().records == [records[1], records[4]])
    }

    @Test func signatureIsHMACSHA256() {
        // RFC 4231 test case 2.
        let mac = Signature.header(secret: Array("Jefe".utf8), body: Array("what do ya want for nothing?".utf8))
        #expect(mac == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
