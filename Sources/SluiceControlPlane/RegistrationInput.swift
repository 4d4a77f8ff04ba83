// Guarded so Fuzz/HookOutputFuzz can compile this file in one module with AddressParser's sources.
#if canImport(SluiceConfig)
    import SluiceConfig
#endif

/// The checks of a target's address and zone wherever one comes in: the API, the state file,
/// fleet records and a launch hook's output. Pure.
enum RegistrationInput {
    /// Longest zone name accepted from the API or the state file.
    static let maxZoneLength = 128

    static func addressProblem(_ address: String) -> String? {
        guard let spec = AddressParser.parse(address), spec.host != "0.0.0.0", spec.host != "::" else {
            return "expected HOST:PORT or [IPv6]:PORT, got \"\(address.prefix(200))\""
        }
        return nil
    }

    static func zoneProblem(_ zone: String) -> String? {
        if zone.isEmpty { return "zone must not be empty" }
        if zone.utf8.count > maxZoneLength { return "zone longer than \(maxZoneLength) bytes" }
        if zone.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "zone must not contain spaces, control characters, quotes or backslashes"
        }
        return nil
    }
}
