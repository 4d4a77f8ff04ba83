// libFuzzer entry point over the event rules' outbox file format (Sources/SluiceEvents): the record
// parser, the replay of records into an outbox state, and compaction.
// Compiled with the files listed in SOURCES into one module (swiftc -sanitize=fuzzer,address).
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * the parser never crashes and its sound prefix lies within the input;
// * the records of the sound prefix re-encode to exactly that prefix, and parse back the same;
// * parsing the sound prefix alone gives the same records (a torn tail changes nothing before it);
// * replaying the records, then compacting, then replaying the compacted records keeps the same
//   pending events (in order) and dead letters.

// A first byte of 0xFF reads the rest as operations (kind, id) building sound records, so replay and
// compaction see long valid histories that random bytes with checksums would rarely reach.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if bytes.first == 0xFF {
        var built: [OutboxRecord] = []
        var i = 1
        while i + 1 < bytes.count {
            let id = "e\(bytes[i + 1] & 0x0F)"
            switch bytes[i] & 0x03 {
            case 0: built.append(.event(id: id, json: [bytes[i + 1]]))
            case 1: built.append(.delivered(id: id))
            case 2: built.append(.dead(id: id, attempts: Int(bytes[i]), failedAt: "t", error: "x"))
            default: built.append(.revived(id: id))
            }
            i += 2
        }
        bytes = built.flatMap { $0.encoded() }
        precondition(OutboxRecord.parse(bytes).records == built)
    }
    let (records, sound) = OutboxRecord.parse(bytes)
    precondition(sound >= 0 && sound <= bytes.count)
    let encoded = records.flatMap { $0.encoded() }
    precondition(encoded == Array(bytes[..<sound]), "re-encoding differs from the sound prefix")
    let again = OutboxRecord.parse(encoded)
    precondition(again.records == records && again.soundLength == encoded.count)

    var state = OutboxState(replaying: records)
    let compacted = state.compacted()
    let replayed = OutboxState(replaying: compacted)
    precondition(replayed.pending.map(\.id) == state.pending.map(\.id))
    precondition(replayed.pending.map(\.json) == state.pending.map(\.json))
    precondition(replayed.dead == state.dead)
    state.didCompact()
    precondition(state.records == compacted.count)
    return 0
}
