import SluiceConfig
import Testing

/// Unix seconds of a UTC civil time, by days_from_civil (the inverse of what the parser uses, so an
/// error on either side shows).
func utc(_ year: Int64, _ month: Int64, _ day: Int64, _ hour: Int64 = 0, _ minute: Int64 = 0, _ second: Int64 = 0) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return days * 86_400 + hour * 3_600 + minute * 60 + second
}

/// `CronSchedule`: parsing, `next(after:)`, `matches(epochSeconds:)`, and a random property check.
@Suite struct CronScheduleTests {
    @Test func utcHelperAgreesWithDate() {
        // `date -u -d 2028-02-29T00:00Z +%s` and friends.
        #expect(utc(2028, 2, 29) == 1_835_395_200)
        #expect(utc(2027, 1, 1) == 1_798_761_600)
        #expect(utc(2026, 12, 31, 23, 59, 30) == 1_798_761_570)
        #expect(utc(1970, 1, 1) == 0)
    }

    // MARK: parsing

    @Test(arguments: [
        ("0 8 * * 1-5", "0 8 * * 1-5"),
        ("0 20 * * *", "0 20 * * *"),
        ("  \t*/15  *\t* * *  \n", "*/15  *\t* * *"),
        ("0 0 * jan-MAR sun,Sat", "0 0 * jan-MAR sun,Sat"),
        ("0-59/7 0-23 1-31 1-12 0-7", "0-59/7 0-23 1-31 1-12 0-7"),
        ("5/20 */24 31 */12 7", "5/20 */24 31 */12 7"),
        ("59 23 31 12 6", "59 23 31 12 6"),
        ("00 01 02 03 04", "00 01 02 03 04"),
        ("1,2-4,*/30 * * feb/2 mon-fri/2", "1,2-4,*/30 * * feb/2 mon-fri/2"),
        ("@yearly", "@yearly"), ("@annually", "@annually"), ("@monthly", "@monthly"), ("@weekly", "@weekly"),
        ("@daily", "@daily"), ("@midnight", "@midnight"), (" @hourly ", "@hourly"),
    ])
    func accepts(text: String, description: String) throws {
        let schedule = try CronSchedule(parsing: text)
        #expect(schedule.description == description)
        #expect("\(schedule)" == description)
    }

    @Test(arguments: [
        ("", "empty cron expression"),
        (" \t ", "empty cron expression"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"),
        ("* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month: 0 is outside 1-31"),
        ("* * 32 * *", "day-of-month: 32 is outside 1-31"),
        ("* * * 0 *", "month: 0 is outside 1-12"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day-of-week: 8 is outside 0-7"),
        ("1,,2 * * * *", "minute: empty item in '1,,2'"),
        ("1, * * * *", "minute: empty item in '1,'"),
        (",1 * * * *", "minute: empty item in ',1'"),
        ("5-3 * * * *", "minute: range 5-3 starts after it ends"),
        ("* * * dec-jan *", "month: range 12-1 starts after it ends"),
        ("*/0 * * * *", "minute: step 0 is outside 1-60"),
        ("*/61 * * * *", "minute: step 61 is outside 1-60"),
        ("* */25 * * *", "hour: step 25 is outside 1-24"),
        ("* * * * */9", "day-of-week: step 9 is outside 1-8"),
        ("100 * * * *", "minute: number '100' has more than 2 digits"),
        ("007 * * * *", "minute: number '007' has more than 2 digits"),
        ("*/100 * * * *", "minute: step '100' has more than 2 digits"),
        ("x * * * *", "minute: 'x' is not a number in 'x'"),
        ("mon * * * *", "minute: 'mon' is not a number in 'mon'"),
        ("1x * * * *", "minute: '1x' is not a number in '1x'"),
        ("* * * foo *", "month: unknown name 'foo' in 'foo'"),
        ("* * * * mon-fry", "day-of-week: unknown name 'fry' in 'mon-fry'"),
        ("* * * * monday", "day-of-week: unknown name 'monday' in 'monday'"),
        ("* * * * jan", "day-of-week: unknown name 'jan' in 'jan'"),
        ("*/5/2 * * * *", "minute: more than one '/' in '*/5/2'"),
        ("1-2-3 * * * *", "minute: more than one '-' in '1-2-3'"),
        ("-5 * * * *", "minute: missing number in '-5'"),
        ("5- * * * *", "minute: missing number in '5-'"),
        ("*/ * * * *", "minute: missing step in '*/'"),
        ("/5 * * * *", "minute: missing number in '/5'"),
        ("*-5 * * * *", "minute: '*' is not a number in '*-5'"),
        ("** * * * *", "minute: '**' is not a number in '**'"),
        ("+5 * * * *", "minute: '+5' is not a number in '+5'"),
        ("é * * * *", "cron expression contains a non-ASCII or control character"),
        ("*\n* * * *", "cron expression contains a non-ASCII or control character"),
        ("* * * * *\0", "cron expression contains a non-ASCII or control character"),
        ("@reboot", "unknown macro '@reboot' (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)"),
        ("@DAILY", "unknown macro '@DAILY' (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)"),
        ("@daily *", "unknown macro '@daily *' (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)"),
        (String(repeating: "1,", count: 600) + "1 * * * *", "cron expression is longer than 1024 bytes"),
    ])
    func refuses(text: String, message: String) {
        do {
            let schedule = try CronSchedule(parsing: text)
            Issue.record("accepted as \(schedule)")
        } catch {
            #expect(error.description == message)
        }
    }

    // MARK: next

    static let nextCases: [(String, Int64, Int64?)] = [
        // SPEC §11's examples. 2026-12-12 is a Saturday, 2026-12-07 a Monday.
        ("0 8 * * 1-5", utc(2026, 12, 12), utc(2026, 12, 14, 8)),
        ("0 8 * * 1-5", utc(2026, 12, 7, 7, 59, 59), utc(2026, 12, 7, 8)),
        ("0 8 * * 1-5", utc(2026, 12, 7, 8), utc(2026, 12, 8, 8)),  // strictly after
        ("0 8 * * 1-5", utc(2026, 12, 11, 8, 0, 1), utc(2026, 12, 14, 8)),  // Friday → Monday
        ("0 20 * * *", utc(2026, 12, 7, 20), utc(2026, 12, 8, 20)),
        ("0 20 * * *", utc(2026, 12, 7, 19, 59, 59), utc(2026, 12, 7, 20)),
        ("0 20 * * *", utc(2026, 12, 31, 21), utc(2027, 1, 1, 20)),  // year rollover
        // Steps.
        ("*/15 * * * *", utc(2026, 12, 7, 12, 7, 30), utc(2026, 12, 7, 12, 15)),
        ("*/15 * * * *", utc(2026, 12, 7, 12, 45), utc(2026, 12, 7, 13)),
        ("*/15 * * * *", utc(2026, 12, 31, 23, 59, 30), utc(2027, 1, 1)),
        ("5/20 * * * *", utc(2026, 12, 7, 12, 45), utc(2026, 12, 7, 13, 5)),
        ("0 */6 * * *", utc(2026, 12, 7, 18, 0, 1), utc(2026, 12, 8)),
        ("* * * * *", 0, 60),
        ("* * * * *", 59, 60),
        ("* * * * *", 60, 120),
        // Month ends and leap years.
        ("0 0 1 * *", utc(2026, 1, 31, 12), utc(2026, 2, 1)),
        ("0 0 31 * *", utc(2026, 4, 1), utc(2026, 5, 31)),
        ("30 23 28-31 2 *", utc(2028, 2, 28, 23, 30), utc(2028, 2, 29, 23, 30)),
        ("30 23 28-31 2 *", utc(2027, 2, 28, 23, 30), utc(2028, 2, 28, 23, 30)),
        ("0 0 29 2 *", utc(2026, 3, 1), 1_835_395_200),  // 2028-02-29
        ("0 0 29 2 *", utc(2096, 2, 29), utc(2104, 2, 29)),  // 2100 is no leap year
        ("0 0 29 2 *", utc(2000, 1, 1), utc(2000, 2, 29)),  // 2000 is
        ("0 0 30 2 *", utc(2026, 1, 1), nil),
        ("0 0 31 4,6,9,11 *", utc(2026, 1, 1), nil),
        // Day-of-month OR day-of-week when both are restricted, AND when one starts with `*`.
        ("0 12 13 * fri", utc(2026, 12, 7), utc(2026, 12, 11, 12)),  // the Friday first
        ("0 12 13 * fri", utc(2026, 12, 11, 12), utc(2026, 12, 13, 12)),  // then the 13th (a Sunday)
        ("0 12 */2 * fri", utc(2026, 12, 11, 12), utc(2026, 12, 25, 12)),  // odd days that are Fridays
        ("0 12 13 * *", utc(2026, 12, 7), utc(2026, 12, 13, 12)),
        ("0 12 * * fri", utc(2026, 12, 11, 12), utc(2026, 12, 18, 12)),
        ("0 0 * 2 sun", utc(2027, 2, 28), utc(2028, 2, 6)),
        // Weekday 7 and names.
        ("0 0 * * 7", utc(2026, 12, 7), utc(2026, 12, 13)),
        ("0 0 * * sun", utc(2026, 12, 7), utc(2026, 12, 13)),
        ("0 0 * * 5-7", utc(2026, 12, 12), utc(2026, 12, 13)),
        ("0 0 * * 5-7", utc(2026, 12, 13), utc(2026, 12, 18)),
        ("0 0 1 jan-mar *", utc(2026, 4, 1), utc(2027, 1, 1)),
        ("0 9 * DEC Mon", utc(2026, 12, 7, 9), utc(2026, 12, 14, 9)),
        ("0 9 * DEC Mon", utc(2026, 12, 28, 9), utc(2027, 12, 6, 9)),
        // Macros.
        ("@hourly", utc(2026, 12, 7, 12), utc(2026, 12, 7, 13)),
        ("@hourly", utc(2026, 12, 7, 12, 59, 59), utc(2026, 12, 7, 13)),
        ("@daily", utc(2026, 12, 7, 12), utc(2026, 12, 8)),
        ("@midnight", utc(2026, 12, 7), utc(2026, 12, 8)),
        ("@weekly", utc(2026, 12, 7), utc(2026, 12, 13)),
        ("@monthly", utc(2026, 12, 7), utc(2027, 1, 1)),
        ("@yearly", utc(2026, 6, 15), utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1), utc(2028, 1, 1)),
        // Out of range instants.
        ("* * * * *", -1, nil),
        ("* * * * *", Int64.min, nil),
        ("* * * * *", Int64.max, nil),
        ("* * * * *", 253_402_300_799, 253_402_300_800),  // the latest instant answered
        ("* * * * *", 253_402_300_800, nil),
    ]

    @Test(arguments: nextCases)
    func next(text: String, after: Int64, expected: Int64?) throws {
        #expect(try CronSchedule(parsing: text).next(after: after) == expected)
    }

    // MARK: matches

    @Test(arguments: [
        ("0 8 * * 1-5", utc(2026, 12, 7, 8), true),
        ("0 8 * * 1-5", utc(2026, 12, 7, 8, 0, 59), true),  // any second of the minute
        ("0 8 * * 1-5", utc(2026, 12, 7, 8, 1), false),
        ("0 8 * * 1-5", utc(2026, 12, 12, 8), false),  // Saturday
        ("0 0 29 2 *", 1_835_395_200, true),
        ("0 12 13 * fri", utc(2026, 12, 11, 12), true),
        ("0 12 13 * fri", utc(2026, 12, 13, 12), true),
        ("0 12 13 * fri", utc(2026, 12, 12, 12), false),
        ("0 0 1 1 *", 0, true),
        ("0 0 1 1 *", 30, true),
        ("59 23 31 12 *", -1, true),  // 1969-12-31T23:59:59Z
        ("59 23 31 12 3", -1, true),  // a Wednesday
        ("59 23 * * 4", -1, false),
        ("* * * * *", Int64.min, true),
        ("* * * * *", Int64.max, true),
        ("0 0 1 1 *", Int64.min, false),
    ])
    func matches(text: String, instant: Int64, expected: Bool) throws {
        #expect(try CronSchedule(parsing: text).matches(epochSeconds: instant) == expected)
    }

    // MARK: property

    /// SplitMix64, seeded, so a failure reproduces.
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A random valid field over `low...high`: a list of 1–3 items of every shape.
    static func field(_ low: Int, _ high: Int, names: [String], _ r: inout Random) -> String {
        func value(_ v: Int, _ r: inout Random) -> String {
            let n = v - low
            return !names.isEmpty && n < names.count && Bool.random(using: &r) ? names[n].uppercased() : "\(v)"
        }
        var items: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &r) {
            let a = Int.random(in: low...high, using: &r)
            let b = Int.random(in: a...high, using: &r)
            let step = Int.random(in: 1...(high - low + 1), using: &r)
            switch Int.random(in: 0..<6, using: &r) {
            case 0: items.append("*")
            case 1: items.append("*/\(step)")
            case 2: items.append(value(a, &r))
            case 3: items.append("\(value(a, &r))-\(value(b, &r))")
            case 4: items.append("\(value(a, &r))-\(value(b, &r))/\(step)")
            default: items.append("\(value(a, &r))/\(step)")
            }
        }
        return items.joined(separator: ",")
    }

    @Test func nextIsTheFirstFiringMinute() throws {
        var r = Random(state: 0x5EED_C0DE)
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let weekdays = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        var found = 0
        var daily = 0
        for _ in 0..<2_000 {
            // Half of them fire every day, so the minute-by-minute check applies.
            let everyDay = Bool.random(using: &r)
            let text = [
                Self.field(0, 59, names: [], &r),
                Self.field(0, 23, names: [], &r),
                everyDay ? "*" : Self.field(1, 31, names: [], &r),
                everyDay ? "*" : Self.field(1, 12, names: months, &r),
                everyDay ? "*" : Self.field(0, 7, names: weekdays, &r),
            ].joined(separator: " ")
            let schedule = try CronSchedule(parsing: text)
            let t = Int64.random(in: 0..<4_102_444_800, using: &r)  // before 2100
            guard let next = schedule.next(after: t) else {
                #expect(!everyDay, "\(text) after \(t): nil")
                continue
            }
            found += 1
            #expect(next > t, "\(text) after \(t): \(next)")
            #expect(next % 60 == 0, "\(text) after \(t): \(next)")
            #expect(schedule.matches(epochSeconds: next), "\(text) after \(t): \(next) does not match")
            guard everyDay else { continue }
            daily += 1
            #expect(next - t <= 86_400 + 60, "\(text) after \(t): \(next) is more than a day later")
            var minute = (t / 60 + 1) * 60
            while minute < next {
                if schedule.matches(epochSeconds: minute) {
                    Issue.record("\(text) after \(t): \(minute) matches before \(next)")
                    break
                }
                minute += 60
            }
        }
        #expect(daily > 800)
        #expect(found > 1_600)
    }
}
