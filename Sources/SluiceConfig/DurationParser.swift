/// Parses config durations (SPEC §2) into nanoseconds.
///
/// A duration is one or more `NUMBER UNIT` parts with no spaces: `250ms`, `5s`, `2m`, `1h`,
/// `0s`, `1m30s`, `1.5s`. Units are `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m` and `h`. A unit is
/// required (a bare `30` is rejected, as is `0`); signs, spaces, empty text and values beyond
/// `UInt64.max` nanoseconds are rejected. A fraction is allowed and truncated to whole
/// nanoseconds.
public enum DurationParser {
    /// Nanoseconds in `s`, or `nil` if `s` is not a valid duration.
    public static func parse(_ s: String) -> UInt64? {
        let bytes = Array(s.utf8)
        guard !bytes.isEmpty else { return nil }
        var total: UInt64 = 0
        var i = 0
        while i < bytes.count {
            // Whole part.
            let wholeStart = i
            var whole: UInt64 = 0
            while i < bytes.count, let digit = decimalDigit(bytes[i]) {
                guard let next = multiplyAdd(whole, 10, UInt64(digit)) else { return nil }
                whole = next
                i += 1
            }
            let hasWhole = i > wholeStart
            // Optional fraction: kept as digits, scaled once the unit is known.
            var fraction: [UInt8] = []
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                while i < bytes.count, let digit = decimalDigit(bytes[i]) {
                    fraction.append(digit)
                    i += 1
                }
            }
            guard hasWhole || !fraction.isEmpty else { return nil }
            // Unit.
            guard let match = unitMatch(at: i, in: bytes) else { return nil }
            let unit = match.nanos
            i += match.length
            guard let wholeNanos = multiplyAdd(whole, unit, 0) else { return nil }
            let part = wholeNanos.addingReportingOverflow(fractionNanos(fraction, unit: unit))
            guard !part.overflow else { return nil }
            let sum = total.addingReportingOverflow(part.partialValue)
            guard !sum.overflow else { return nil }
            total = sum.partialValue
        }
        return total
    }

    /// Nanoseconds per unit, longest spellings first so `ms` is not read as `m`.
    private static let units: [(spelling: [UInt8], nanos: UInt64)] = [
        (Array("ns".utf8), 1),
        (Array("us".utf8), 1_000),
        (Array("\u{B5}s".utf8), 1_000),  // µs, micro sign
        (Array("\u{3BC}s".utf8), 1_000),  // μs, Greek mu
        (Array("ms".utf8), Nanoseconds.millisecond),
        (Array("s".utf8), Nanoseconds.second),
        (Array("m".utf8), 60 * Nanoseconds.second),
        (Array("h".utf8), 3_600 * Nanoseconds.second),
    ]

    private static func unitMatch(at index: Int, in bytes: [UInt8]) -> (nanos: UInt64, length: Int)? {
        for (spelling, nanos) in units where bytes.count - index >= spelling.count {
            if bytes[index..<index + spelling.count].elementsEqual(spelling) {
                return (nanos, spelling.count)
            }
        }
        return nil
    }

    private static func decimalDigit(_ byte: UInt8) -> UInt8? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : nil
    }

    /// `a * b + c`, or `nil` on overflow.
    private static func multiplyAdd(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64? {
        let product = a.multipliedReportingOverflow(by: b)
        guard !product.overflow else { return nil }
        let sum = product.partialValue.addingReportingOverflow(c)
        return sum.overflow ? nil : sum.partialValue
    }

    /// `0.DIGITS × unit` in whole nanoseconds, truncated. Digits past the 18th are ignored: they
    /// are below a nanosecond for every unit up to an hour.
    private static func fractionNanos(_ digits: [UInt8], unit: UInt64) -> UInt64 {
        guard !digits.isEmpty else { return 0 }
        var numerator: UInt64 = 0
        var denominator: UInt64 = 1
        for digit in digits.prefix(18) {
            numerator = numerator * 10 + UInt64(digit)
            denominator *= 10
        }
        // numerator < denominator, so the quotient is below `unit` and cannot overflow.
        return denominator.dividingFullWidth(numerator.multipliedFullWidth(by: unit)).quotient
    }
}
