/// Parses config sizes (`max_request_body`, `max_header_bytes`, ...) into bytes.
///
/// A size is a YAML integer (bytes) or a whole number with a unit and no space: `K`, `M`, `G`
/// (or `KiB`, `MiB`, `GiB`) are powers of 1024, as in nginx; `KB`, `MB`, `GB` are powers of
/// 1000; `B` is bytes. Units are case-insensitive (`10m`, `64k`). Fractions, signs and values
/// beyond `UInt64.max` are rejected.
public enum ByteSizeParser {
    private static let units: [(name: String, bytes: UInt64)] = [
        ("", 1), ("b", 1),
        ("k", 1 << 10), ("kib", 1 << 10), ("kb", 1_000),
        ("m", 1 << 20), ("mib", 1 << 20), ("mb", 1_000_000),
        ("g", 1 << 30), ("gib", 1 << 30), ("gb", 1_000_000_000),
    ]

    /// Bytes in `s`, or `nil` if `s` is not a valid size.
    public static func parse(_ s: String) -> UInt64? {
        let digits = s.utf8.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") || $0 == UInt8(ascii: "_") }
        guard digits.first.map({ $0 != UInt8(ascii: "_") }) == true else { return nil }
        var number: UInt64 = 0
        for byte in digits where byte != UInt8(ascii: "_") {
            let (times10, o1) = number.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            number = sum
        }
        let unit = String(decoding: s.utf8.dropFirst(digits.count), as: UTF8.self).lowercased()
        guard let scale = units.first(where: { $0.name == unit })?.bytes else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }
}
