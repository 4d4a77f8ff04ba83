// libFuzzer entry point over sluicectl's handling of the daemon's answer: HTTPResponseDecoder, then
// the JSON decoding and human rendering of each answer type. Compiled with the files listed in
// SOURCES into one module (swiftc -sanitize=fuzzer,address), so no SwiftPM product is needed.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * the decoder never crashes, whatever the bytes and however they are split;
// * feeding the bytes whole or in two pieces (split at a byte chosen by the input) gives the same
//   events (body bytes concatenated) and the same outcome;
// * the body bytes never exceed the input, and a complete answer has exactly one head and one end;
// * decoding the body as any API type and rendering it never crashes (`Render`, `JSON.pretty`).
import Foundation

private enum Outcome: Equatable {
    case complete(status: Int, body: [UInt8])
    case incomplete(status: Int?, body: [UInt8])
    case failed
}

private func decode(_ input: UnsafeRawBufferPointer, cut: Int) -> Outcome {
    var decoder = HTTPResponseDecoder()
    var status: Int?
    var body: [UInt8] = []
    var heads = 0
    var ends = 0
    func apply(_ events: [HTTPResponseDecoder.Event]) {
        for event in events {
            switch event {
            case .head(let head):
                heads += 1
                status = head.status
                precondition((100...599).contains(head.status))
            case .body(let bytes):
                precondition(heads == 1 && ends == 0, "body outside a response")
                body += bytes
            case .end:
                ends += 1
            }
        }
    }
    do {
        apply(try decoder.feed(input[..<cut]))
        apply(try decoder.feed(input[cut...]))
        if !decoder.isComplete { apply(try decoder.finish()) }
    } catch {
        return .failed
    }
    precondition(heads <= 1 && ends <= 1 && body.count <= input.count)
    guard decoder.isComplete else { return .incomplete(status: status, body: body) }
    precondition(heads == 1 && ends == 1, "complete without one head and one end")
    return .complete(status: status!, body: body)
}

private func render(_ body: [UInt8]) {
    _ = JSON.pretty(Data(body))
    _ = JSON.compact(Data(body))
    if let s = try? JSON.decode(StatusInfo.self, from: body) { _ = Render.status(s) }
    if let g = try? JSON.decode([GroupInfo].self, from: body) { _ = Render.targets(g) }
    if let g = try? JSON.decode(GroupInfo.self, from: body) { _ = Render.targets([g]) }
    if let t = try? JSON.decode(TargetInfo.self, from: body) { _ = Render.target(t, group: "g") }
    if let e = try? JSON.decode(ControlEvent.self, from: body) { _ = Render.event(e) }
    if let r = try? JSON.decode(ReloadResult.self, from: body) { _ = Render.reload(r) }
    if let u = try? JSON.decode([String: Double].self, from: body) { for v in u.values { _ = Render.uptime(v) } }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let input = UnsafeRawBufferPointer(rebasing: all[1...])
    let split = Int(all[0]) % (input.count + 1)
    let whole = decode(input, cut: input.count)
    let pieces = decode(input, cut: split)
    precondition(whole == pieces, "split decode differs: \(whole) vs \(pieces)")
    switch whole {
    case .complete(_, let body), .incomplete(_, let body): render(body)
    case .failed: render(Array(input))
    }
    return 0
}
