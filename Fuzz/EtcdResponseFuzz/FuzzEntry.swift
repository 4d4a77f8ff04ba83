// libFuzzer entry point over the etcd client's answer handling: the HTTP/1 decoder, then every
// unary answer decoder and the watch stream over the body, then the watch's resume bookkeeping.
// Compiled with the files listed in SOURCES into one module (swiftc -sanitize=fuzzer,address).
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * no decoder crashes, whatever the bytes and however they are split;
// * the watch stream gives the same messages (or the same failure) fed whole or in two pieces
//   split at a byte chosen by the input;
// * the watch's resume revision never goes back, and no change is delivered below it.
import Foundation

private func body(_ input: UnsafeRawBufferPointer) -> (status: Int, body: [UInt8])? {
    var decoder = HTTPResponseDecoder()
    var status = 0
    var out: [UInt8] = []
    do {
        var events = try decoder.feed(input)
        if !decoder.isComplete { events += try decoder.finish() }
        for e in events {
            switch e {
            case .head(let h): status = h.status
            case .body(let b): out += b
            case .end: break
            }
        }
    } catch {
        return nil
    }
    precondition(out.count <= input.count)
    return (status, out)
}

private func unary(status: Int, body: [UInt8]) {
    guard let o = try? EtcdWire.answer(status: status, body: body) else { return }
    _ = try? EtcdWire.range(o)
    _ = try? EtcdWire.deleted(o)
    _ = try? EtcdWire.txn(o)
    _ = try? EtcdWire.grant(o)
    _ = try? EtcdWire.revision(o)
    _ = try? EtcdWire.keepAlive(status: status, body: body)
}

private func stream(_ bytes: [UInt8], cut: Int) -> Result<[EtcdWatchMessage], EtcdError> {
    var s = EtcdWatchStream()
    do throws(EtcdError) {
        var out = try s.feed(bytes[..<cut])
        out += try s.feed(bytes[cut...])
        return .success(out)
    } catch {
        return .failure(error)
    }
}

private func watch(_ messages: [EtcdWatchMessage], start: Int64) {
    var state = EtcdWatchState(startRevision: start)
    for m in messages {
        let before = state.next
        var out: [EtcdWatchEvent] = []
        let next = state.apply(m, into: &out)
        precondition(state.next >= before, "resume revision went back")
        for e in out {
            switch e {
            case .put(let kv): precondition(before == 0 || kv.modRevision >= before, "change delivered twice")
            case .delete(_, let rev): precondition(before == 0 || rev >= before, "change delivered twice")
            default: break
            }
        }
        if next == .end { return }
        if case .reconnect(let r) = next { _ = state.lost(r) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let input = UnsafeRawBufferPointer(rebasing: all[1...])
    // Bit 7 of the first byte: the input is an HTTP answer, or a body already.
    let answer = all[0] & 0x80 != 0 ? body(input) : (200, Array(input))
    guard let (status, bytes) = answer else { return 0 }
    unary(status: status, body: bytes)
    let split = Int(all[0] & 0x7f) % (bytes.count + 1)
    let whole = stream(bytes, cut: bytes.count)
    let pieces = stream(bytes, cut: split)
    switch (whole, pieces) {
    case (.success(let a), .success(let b)): precondition(a == b, "split stream differs")
    case (.failure, .failure): break
    default: preconditionFailure("split stream outcome differs")
    }
    if case .success(let messages) = whole { watch(messages, start: Int64(all[0] & 0x0f)) }
    return 0
}
