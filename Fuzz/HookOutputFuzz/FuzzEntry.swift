// libFuzzer entry point over HookOutput (Sources/SluiceControlPlane/HookOutput.swift), compiled
// with RegistrationInput and AddressParser into one module by `make fuzz FUZZ=HookOutputFuzz`. The
// whole input is a launch hook's stdout, bytes Sluice does not control.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * parsing never crashes, whatever the bytes: a failure always has a message;
// * only the first line of the first `maxBytes` bytes counts: what follows a newline there never
//   changes the answer;
// * an accepted answer passes the checks a registration passes (a routable address, a valid
//   zone), and printing it back (`ADDRESS ZONE\n`) parses to the same answer.

#if canImport(Glibc)
internal import Glibc
#endif

func checkOutput(_ bytes: [UInt8]) {
    let result = HookOutput.parse(bytes)
    switch result {
    case .failure(let e):
        check(!e.message.isEmpty, "empty failure message for \(bytes)")
    case .success(let answer):
        check(RegistrationInput.addressProblem(answer.address) == nil, "accepted an unroutable address \(answer.address)")
        if let zone = answer.zone {
            check(RegistrationInput.zoneProblem(zone) == nil, "accepted a bad zone \(Array(zone.utf8))")
        }
        let printed = answer.address + (answer.zone.map { " " + $0 } ?? "") + "\n"
        check(HookOutput.parse(Array(printed.utf8)) == result, "\(printed.debugDescription) parses differently")
    }
    // Whatever follows the first newline (within the bounded prefix) is never looked at.
    let head = bytes.prefix(HookOutput.maxBytes)
    if let nl = head.firstIndex(of: UInt8(ascii: "\n")) {
        let firstLine = Array(bytes[..<nl]) + [UInt8(ascii: "\n")]
        check(HookOutput.parse(firstLine) == result, "the bytes after the first line changed the answer")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    checkOutput(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
