// libFuzzer entry point over the control socket's request handling without sockets:
// ControlRequestParser on hostile bytes, then ControlRouter with an in-memory backend, as
// ControlServer drives them. Compiled with the files listed in SOURCES into one module
// (swiftc -sanitize=fuzzer,address).
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * the parser never crashes and never holds more than its limits allow;
// * parsing the bytes whole or in two pieces (split at a byte chosen by the input) gives the same
//   requests and the same final result;
// * routing any parsed request never crashes and answers a status from 200 to 599 with a JSON body
//   that decodes as an error body whenever the status is 4xx/5xx;
// * `isLongLived` agrees with the router on event streams.
import Foundation

private final class Backend: ControlBackend {
    let target = TargetInfo(address: "10.0.0.1:80", zone: "z", weight: 1, state: "healthy", isStatic: true)
    func status() -> StatusInfo {
        StatusInfo(version: "v", uptimeSeconds: 1e19, zone: nil, workers: 1, configFile: "/c", configHash: "h",
                   connectionsActive: 0, connectionsTotal: 0, planGeneration: 1)
    }
    func nodes() -> [NodeInfo] { [] }
    func groups() -> [GroupInfo] { [group("web")!] }
    func group(_ name: String) -> GroupInfo? {
        name == "web" ? GroupInfo(name: "web", proto: "http", algorithm: "rr", crossZone: "true", failOpen: false,
                                  targets: [target]) : nil
    }
    func register(group: String, _ request: RegisterRequest) throws(ControlError) -> (created: Bool, target: TargetInfo) {
        guard group == "web" else { throw .notFound("no group") }
        return (true, TargetInfo(address: request.address, zone: request.zone, weight: request.weight ?? 1, state: "unknown"))
    }
    func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlError) -> TargetInfo {
        guard group == "web" else { throw .notFound("no group") }
        return target
    }
    func update(group: String, address: String, _ request: UpdateRequest) throws(ControlError) -> TargetInfo { target }
    func reload() -> ReloadResult { ReloadResult(ok: false, generation: 1, errors: ["e"]) }
    func metrics() -> String { "sluice_up 1\n" }
}

private let router = ControlRouter(backend: Backend())

private func parseAll(_ input: UnsafeRawBufferPointer, cut: Int) -> ([HTTPRequest], ControlRequestParser.Result) {
    var parser = ControlRequestParser()
    var requests: [HTTPRequest] = []
    var last = ControlRequestParser.Result.needMore
    for piece in [input[..<cut], input[cut...]] {
        parser.append(piece)
        while true {
            last = parser.next()
            guard case .request(let request) = last else { break }
            requests.append(request)
        }
        if case .failure = last { break }
        precondition(parser.buffered <= ControlRequestParser.maxHeadBytes + ControlRequestParser.maxBodyBytes + input.count)
    }
    return (requests, last)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let input = UnsafeRawBufferPointer(rebasing: all[1...])
    let split = Int(all[0]) % (input.count + 1)
    let (whole, r1) = parseAll(input, cut: input.count)
    let (pieces, r2) = parseAll(input, cut: split)
    precondition(whole == pieces, "split parse gives other requests")
    if case .failure(let e1) = r1 {
        guard case .failure(let e2) = r2 else { preconditionFailure("split parse did not fail") }
        precondition(e1.status == e2.status)
    }
    for request in whole {
        precondition(request.body.count <= ControlRequestParser.maxBodyBytes)
        _ = request.keepAlive
        _ = request.query
        let longLived = ControlRouter.isLongLived(request)
        switch router.route(request) {
        case .events:
            precondition(longLived, "an event stream not seen as long-lived")
        case .respond(let response):
            precondition((200...599).contains(response.status))
            if response.status >= 400 {
                precondition((try? JSONDecoder().decode(APIErrorBody.self, from: Data(response.body))) != nil)
            }
            _ = response.serialized(close: true)
        }
    }
    return 0
}
