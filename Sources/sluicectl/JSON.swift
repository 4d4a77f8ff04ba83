import Foundation

/// JSON in and out for the CLI: plain coders (the API types carry their snake_case keys) and the
/// stable pretty form `--json` prints.
enum JSON {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }

    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// The body pretty-printed with sorted keys, so the same answer always prints the same; the body
    /// as text when it is not JSON.
    static func pretty(_ body: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return String(decoding: body, as: UTF8.self) }
        return String(decoding: data, as: UTF8.self)
    }

    /// One NDJSON line in the same stable form, compact.
    static func compact(_ line: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: line, options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return String(decoding: line, as: UTF8.self) }
        return String(decoding: data, as: UTF8.self)
    }
}
