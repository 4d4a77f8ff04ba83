/// A five-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC.
///
/// Semantics are Vixie cron's (crontab(5)): fields separated by spaces or tabs; each field is a
/// comma-separated list of `*`, `N`, `A-B`, `*/S`, `A-B/S` and `A/S` (= `A-MAX/S`); months may be
/// written `jan`…`dec` and weekdays `sun`…`sat` (any case, ranges too); day-of-week 7 is Sunday.
/// When day-of-month and day-of-week are both restricted (neither field starts with `*`), a day
/// fires if either matches; otherwise both must. The macros `@yearly`, `@annually`, `@monthly`,
/// `@weekly`, `@daily`, `@midnight` and `@hourly` stand for their usual expressions.
///
/// Input comes from hand-edited config files and is treated as hostile: parsing is linear in the
/// text (at most `maxLength` bytes), `next(after:)` looks at most `searchDays` days ahead with a
/// constant amount of work per day, and every instant computation is bounded so none overflows.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// How day-of-month and day-of-week combine.
    enum DayRule: Sendable, Equatable {
        /// At least one of the two fields starts with `*`: a day fires when both match.
        case both
        /// Both fields are restricted: a day fires when either matches.
        case either
    }

    /// The text as written, trimmed of surrounding blanks.
    public let description: String
    /// Bit N set: value N fires. Minutes 0–59, hours 0–23, days 1–31, months 1–12, weekdays 0–6
    /// (Sunday 0; a written 7 is folded into 0).
    let minutes: UInt64
    let hours: UInt64
    let days: UInt64
    let months: UInt64
    let weekdays: UInt64
    let dayRule: DayRule

    /// Longest accepted text, in bytes (a list of every minute is under 200).
    static let maxLength = 1_024
    /// Days `next(after:)` searches: 8 years of 366 days, enough to span the 8-year gap between
    /// leap days around 2100.
    static let searchDays: Int64 = 8 * 366
    /// The latest `after` that `next(after:)` answers for: 9999-12-31T23:59:59Z.
    static let latestInstant: Int64 = 253_402_300_799
    static let secondsPerDay: Int64 = 86_400

    public init(parsing text: String) throws(ParseError) {
        let all = Array(text.utf8)
        guard all.count <= Self.maxLength else {
            throw ParseError("cron expression is longer than \(Self.maxLength) bytes")
        }
        var start = 0
        var end = all.count
        while start < end, Self.isTrimmable(all[start]) { start += 1 }
        while end > start, Self.isTrimmable(all[end - 1]) { end -= 1 }
        let bytes = all[start..<end]
        guard !bytes.isEmpty else { throw ParseError("empty cron expression") }
        for b in bytes where !(b == 0x09 || (0x20...0x7E).contains(b)) {
            throw ParseError("cron expression contains a non-ASCII or control character")
        }
        let trimmed = String(decoding: bytes, as: UTF8.self)
        description = trimmed

        let fieldText: [ArraySlice<UInt8>]
        if bytes.first == UInt8(ascii: "@") {
            guard let expansion = Self.macros.first(where: { $0.name == trimmed })?.expansion else {
                throw ParseError("unknown macro '\(trimmed)' (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)")
            }
            fieldText = Self.splitFields(Array(expansion.utf8)[...])
        } else {
            fieldText = Self.splitFields(bytes)
        }
        guard fieldText.count == 5 else {
            throw ParseError(
                "expected 5 fields (minute hour day-of-month month day-of-week), found \(fieldText.count)")
        }
        minutes = try Self.parseField(fieldText[0], Field.minute)
        hours = try Self.parseField(fieldText[1], Field.hour)
        days = try Self.parseField(fieldText[2], Field.dayOfMonth)
        months = try Self.parseField(fieldText[3], Field.month)
        var dow = try Self.parseField(fieldText[4], Field.dayOfWeek)
        if dow & (1 << 7) != 0 { dow = (dow & ~(1 << 7)) | 1 }
        weekdays = dow
        let star = UInt8(ascii: "*")
        dayRule = fieldText[2].first == star || fieldText[4].first == star ? .both : .either
    }

    /// The first time strictly after `after` (Unix seconds) at which the schedule fires (a whole minute), or nil
    /// when none comes within the next 8 years (e.g. "0 0 30 2 *").
    public func next(after: Int64) -> Int64? {
        // Both bounds keep every product and sum below within Int64 by a wide margin.
        guard after >= 0, after <= Self.latestInstant else { return nil }
        let start = (after / 60 + 1) * 60
        let firstDay = start / Self.secondsPerDay
        let firstMinuteOfDay = (start % Self.secondsPerDay) / 60
        for offset in 0...Self.searchDays {
            let day = firstDay + offset
            guard dayMatches(day) else { continue }
            let from = offset == 0 ? firstMinuteOfDay : 0
            if let minuteOfDay = firstFiringMinute(from: from) {
                return day * Self.secondsPerDay + minuteOfDay * 60
            }
        }
        return nil
    }

    /// Whether the minute containing `epochSeconds` is a firing minute.
    public func matches(epochSeconds: Int64) -> Bool {
        // Floor division, so instants before 1970 land in the right day; no step can overflow.
        var day = epochSeconds / Self.secondsPerDay
        var second = epochSeconds % Self.secondsPerDay
        if second < 0 {
            day -= 1
            second += Self.secondsPerDay
        }
        let hour = second / 3_600
        let minute = second % 3_600 / 60
        return dayMatches(day) && hours & (1 << hour) != 0 && minutes & (1 << minute) != 0
    }

    // MARK: evaluation

    /// Whether the UTC day `day` (days since 1970-01-01) fires at some time.
    func dayMatches(_ day: Int64) -> Bool {
        let date = Self.civil(fromDays: day)
        guard months & (1 << date.month) != 0 else { return false }
        // 1970-01-01 was a Thursday (4).
        var weekday = (day % 7 + 4) % 7
        if weekday < 0 { weekday += 7 }
        let domHit = days & (1 << date.day) != 0
        let dowHit = weekdays & (1 << weekday) != 0
        switch dayRule {
        case .both: return domHit && dowHit
        case .either: return domHit || dowHit
        }
    }

    /// The first firing minute of a day at or after minute-of-day `from` (0..<1440), or nil.
    func firstFiringMinute(from: Int64) -> Int64? {
        let startHour = from / 60
        let startMinute = from % 60
        let laterHours = hours & (UInt64.max << startHour)
        guard laterHours != 0 else { return nil }
        let hour = Int64(truncatingIfNeeded: laterHours.trailingZeroBitCount)
        if hour == startHour {
            let laterMinutes = minutes & (UInt64.max << startMinute)
            if laterMinutes != 0 { return hour * 60 + Int64(truncatingIfNeeded: laterMinutes.trailingZeroBitCount) }
            let afterHours = hours & (UInt64.max << (startHour + 1))
            guard afterHours != 0 else { return nil }
            return Int64(truncatingIfNeeded: afterHours.trailingZeroBitCount) * 60 + Int64(truncatingIfNeeded: minutes.trailingZeroBitCount)
        }
        return hour * 60 + Int64(truncatingIfNeeded: minutes.trailingZeroBitCount)
    }

    /// Month (1–12) and day of month (1–31) of a day counted from 1970-01-01, proleptic Gregorian
    /// (Howard Hinnant's civil_from_days). Exact for every Int64 day count a second count can give.
    static func civil(fromDays days: Int64) -> (month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // from March 1
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 = March
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (month, day)
    }

    // MARK: parsing

    struct Field {
        let name: String
        let low: Int64
        let high: Int64
        /// Three-letter lowercase names for `low`, `low + 1`, …, or none.
        let names: [String]

        static let minute = Field(name: "minute", low: 0, high: 59, names: [])
        static let hour = Field(name: "hour", low: 0, high: 23, names: [])
        static let dayOfMonth = Field(name: "day-of-month", low: 1, high: 31, names: [])
        static let month = Field(
            name: "month", low: 1, high: 12,
            names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
        static let dayOfWeek = Field(
            name: "day-of-week", low: 0, high: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
    }

    static let macros: [(name: String, expansion: String)] = [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
    ]

    static func isTrimmable(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    static func splitFields(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        bytes.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
    }

    static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The bit set of one field.
    static func parseField(_ bytes: ArraySlice<UInt8>, _ field: Field) throws(ParseError) -> UInt64 {
        var mask: UInt64 = 0
        for item in bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw ParseError("\(field.name): empty item in '\(text(bytes))'") }
            mask |= try parseItem(item, field)
        }
        return mask
    }

    /// One list item: `*`, `N`, `A-B`, each optionally followed by `/STEP`.
    static func parseItem(_ item: ArraySlice<UInt8>, _ field: Field) throws(ParseError) -> UInt64 {
        let parts = item.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw ParseError("\(field.name): more than one '/' in '\(text(item))'") }
        let base = parts[0]
        var step: Int64?
        if parts.count == 2 {
            let s = try parseNumber(parts[1], field, in: item, isStep: true)
            let span = field.high - field.low + 1
            guard s >= 1, s <= span else { throw ParseError("\(field.name): step \(s) is outside 1-\(span)") }
            step = s
        }
        var low: Int64
        var high: Int64
        if base.elementsEqual([UInt8(ascii: "*")]) {
            low = field.low
            high = field.high
        } else {
            let ends = base.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard ends.count <= 2 else { throw ParseError("\(field.name): more than one '-' in '\(text(item))'") }
            low = try parseValue(ends[0], field, in: item)
            if ends.count == 2 {
                high = try parseValue(ends[1], field, in: item)
                guard low <= high else {
                    throw ParseError("\(field.name): range \(low)-\(high) starts after it ends")
                }
            } else {
                // `A/S` runs to the field's end; a lone `A` is itself.
                high = step == nil ? low : field.high
            }
        }
        var mask: UInt64 = 0
        // At most 60 rounds: low and high are within 0...59.
        let by = step ?? 1
        var value = low
        while value <= high {
            mask |= UInt64(1) << value
            value += by
        }
        return mask
    }

    /// A value of the field: a number or (months, weekdays) a three-letter name, within range.
    static func parseValue(
        _ bytes: ArraySlice<UInt8>, _ field: Field, in item: ArraySlice<UInt8>
    ) throws(ParseError) -> Int64 {
        if let first = bytes.first, isLetter(first), !field.names.isEmpty {
            let lower = String(decoding: bytes.map { isLetter($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
            guard let index = field.names.firstIndex(of: lower) else {
                throw ParseError("\(field.name): unknown name '\(text(bytes))' in '\(text(item))'")
            }
            return field.low + Int64(truncatingIfNeeded: index)
        }
        let value = try parseNumber(bytes, field, in: item, isStep: false)
        guard value >= field.low, value <= field.high else {
            throw ParseError("\(field.name): \(value) is outside \(field.low)-\(field.high)")
        }
        return value
    }

    /// One or two decimal digits.
    static func parseNumber(
        _ bytes: ArraySlice<UInt8>, _ field: Field, in item: ArraySlice<UInt8>, isStep: Bool
    ) throws(ParseError) -> Int64 {
        let what = isStep ? "step" : "number"
        guard !bytes.isEmpty else { throw ParseError("\(field.name): missing \(what) in '\(text(item))'") }
        guard bytes.allSatisfy(isDigit) else {
            throw ParseError("\(field.name): '\(text(bytes))' is not a \(what) in '\(text(item))'")
        }
        guard bytes.count <= 2 else { throw ParseError("\(field.name): \(what) '\(text(bytes))' has more than 2 digits") }
        var value: Int64 = 0
        for b in bytes { value = value * 10 + Int64(truncatingIfNeeded: b &- UInt8(ascii: "0")) }
        return value
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
}
