// Guarded so Fuzz/HookOutputFuzz can compile this file in one module with its checks.
#if canImport(SluiceConfig)
    import SluiceConfig
#endif

/// The launch hook's answer (SPEC §11): its first stdout line, `ADDRESS [ZONE]`. The bytes come
/// from a program Sluice does not control: read bounded, checked as the API checks a
/// registration, never trusted.
public enum HookOutput {
    /// Most bytes of stdout kept; the rest is read and dropped.
    public static let maxBytes = 4_096

    public struct Answer: Sendable, Equatable {
        public var address: String
        public var zone: String?
        public init(address: String, zone: String? = nil) {
            self.address = address
            self.zone = zone
        }
    }

    /// The address (normalised, as registrations store it) and zone, or why there are none.
    public static func parse(_ bytes: [UInt8]) -> Result<Answer, HookOutputError> {
        let line = bytes.prefix(maxBytes).prefix { $0 != UInt8(ascii: "\n") }
        let fields = line.split { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
        guard !fields.isEmpty else { return .failure(HookOutputError(message: "the launch hook printed no address")) }
        guard fields.count <= 2 else {
            return .failure(HookOutputError(message: "expected ADDRESS [ZONE] on the first line, got \(fields.count) fields"))
        }
        let address = String(decoding: fields[0], as: UTF8.self)
        if let problem = RegistrationInput.addressProblem(address) { return .failure(HookOutputError(message: problem)) }
        guard let spec = AddressParser.parse(address) else {
            return .failure(HookOutputError(message: "expected HOST:PORT or [IPv6]:PORT"))
        }
        var zone: String?
        if fields.count == 2 {
            let z = String(decoding: fields[1], as: UTF8.self)
            if let problem = RegistrationInput.zoneProblem(z) { return .failure(HookOutputError(message: problem)) }
            zone = z
        }
        return .success(Answer(address: spec.description, zone: zone))
    }
}

public struct HookOutputError: Error, Sendable, Equatable {
    public var message: String
}
