// libFuzzer entry point over the config loader (Sources/SluiceConfig) and, through it, Yams and
// libyaml. Compiled with the SluiceConfig sources into one module by
// `make fuzz FUZZ=ConfigLoaderFuzz`; ./prebuild builds Yams and libyaml instrumented the same way
// and links nodns.c, so a host name in a fuzzed config never reaches DNS (it is "not known").
//
// The first byte picks what the rest of the input feeds:
//   0x01 DurationParser   0x02 ByteSizeParser   0x03 AddressParser   0x04 CIDRParser
//   anything else: the whole input is the text of a config file for ConfigLoader.parse(yaml:file:)
// so YAML seeds (Fuzz/ConfigLoaderFuzz/seeds/) work as they are.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * nothing crashes, whatever the text: every problem is a ConfigErrors value;
// * a parsed CIDR has 4 or 16 bytes and a prefix within them (what CIDR.init and SourceRange
//   require: the trap allowlist relies on it);
// * a parsed duration or size printed back in the plain unit parses to the same value;
// * a parsed address has a port in 1...65535, and its description parses to the same address;
// * a config that loads, loads again from the same text to an equal Config (determinism).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let all = UnsafeBufferPointer(start: data, count: size)
    guard size > 0 else { return 0 }
    let rest = String(decoding: UnsafeBufferPointer(rebasing: all[1...]), as: UTF8.self)
    switch all[0] {
    case 0x01:
        if let ns = DurationParser.parse(rest) {
            precondition(DurationParser.parse("\(ns)ns") == ns, "duration \(rest) → \(ns) ns does not round-trip")
        }
    case 0x02:
        if let n = ByteSizeParser.parse(rest) {
            precondition(ByteSizeParser.parse("\(n)") == n, "size \(rest) → \(n) does not round-trip")
        }
    case 0x03:
        if let a = AddressParser.parse(rest) {
            precondition(a.port >= 1, "address \(rest) has port 0")
            precondition(AddressParser.parse(a.description) == a, "address \(rest) → \(a) does not round-trip")
        }
    case 0x04:
        if case .success(let c) = CIDRParser.parse(rest) {
            let bits = c.family == .inet ? 32 : 128
            precondition(c.address.count * 8 == bits, "CIDR \(rest) has \(c.address.count) bytes")
            precondition((0...bits).contains(c.prefixLength), "CIDR \(rest) has prefix \(c.prefixLength)")
        }
    default:
        let text = String(decoding: all, as: UTF8.self)
        var first: Config?
        do {
            first = try ConfigLoader.parse(yaml: text, file: "fuzz.yaml")
        } catch {
            _ = error.description
        }
        if let first {
            let again = try? ConfigLoader.parse(yaml: text, file: "fuzz.yaml")
            precondition(again == first, "loading the same text twice differs")
        }
    }
    return 0
}
