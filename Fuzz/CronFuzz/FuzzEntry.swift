// libFuzzer entry point over CronSchedule (Sources/SluiceConfig/CronSchedule.swift), compiled with
// it into one module by `make fuzz FUZZ=CronFuzz`. The whole input is the text of a cron expression.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * parsing never crashes, whatever the bytes: every problem is a ParseError with a message;
// * parsing is deterministic, and a parsed schedule's description is the trimmed text, which
//   parses again to an equal schedule;
// * for a few instants (fixed ones around leap days, epoch and the far end, and one derived from the
//   input), `next(after: t)` is nil for t outside 1970...9999 and otherwise, when it returns r:
//   r > t, r is a whole minute, `matches(r)`, no minute between t and r matches (checked minute by
//   minute when r is within a day, else at the first firing time of each day in between), and
//   `next` agrees with `matches` on the minute right after t; when it returns nil, no day of the
//   8-year window fires.

#if canImport(Glibc)
internal import Glibc
#endif

func parse(_ text: String) -> CronSchedule? {
    do {
        return try CronSchedule(parsing: text)
    } catch {
        check(!error.description.isEmpty, "empty error message for \(Array(text.utf8))")
        return nil
    }
}

/// Checks `next(after: t)` against `matches`.
func checkNext(_ schedule: CronSchedule, after t: Int64) {
    let r = schedule.next(after: t)
    guard t >= 0, t <= CronSchedule.latestInstant else {
        check(r == nil, "\(schedule) after \(t): \(String(describing: r)) outside the answered range")
        return
    }
    let nextMinute = (t / 60 + 1) * 60
    check((r == nextMinute) == schedule.matches(epochSeconds: nextMinute),
          "\(schedule) after \(t): next \(String(describing: r)) disagrees with matches(\(nextMinute))")
    // Every day that fires, fires at its first hour's first minute.
    let firstTime = Int64(truncatingIfNeeded: schedule.hours.trailingZeroBitCount) * 3_600
        + Int64(truncatingIfNeeded: schedule.minutes.trailingZeroBitCount) * 60
    let firstDay = nextMinute / 86_400
    guard let r else {
        for day in (firstDay + 1)...(firstDay + CronSchedule.searchDays) {
            check(!schedule.matches(epochSeconds: day * 86_400 + firstTime),
                  "\(schedule) after \(t): nil, yet day \(day) fires")
        }
        return
    }
    check(r > t && r % 60 == 0, "\(schedule) after \(t): \(r)")
    check(schedule.matches(epochSeconds: r), "\(schedule) after \(t): \(r) does not match")
    if r - nextMinute <= 86_400 {
        var minute = nextMinute
        while minute < r {
            check(!schedule.matches(epochSeconds: minute), "\(schedule) after \(t): \(minute) matches before \(r)")
            minute += 60
        }
    } else {
        let lastDay = r / 86_400
        var day = firstDay + 1
        while day < lastDay {
            check(!schedule.matches(epochSeconds: day * 86_400 + firstTime),
                  "\(schedule) after \(t): day \(day) fires before \(r)")
            day += 1
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    guard let schedule = parse(text) else {
        check(parse(text) == nil, "parsing \(Array(text.utf8)) is not deterministic")
        return 0
    }
    check(parse(text) == schedule, "parsing \(Array(text.utf8)) is not deterministic")
    check(parse(schedule.description) == schedule, "\(schedule) does not parse to itself")

    // FNV-1a of the input picks one more instant, anywhere from before 1970 to past 9999.
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    let derived = Int64(truncatingIfNeeded: hash % 300_000_000_000) - 20_000_000_000
    for t in [
        derived, 0, -1, 59, 951_782_399, 4_107_542_340, CronSchedule.latestInstant - 30,
        CronSchedule.latestInstant, CronSchedule.latestInstant + 1, Int64.min, Int64.max,
    ] {
        checkNext(schedule, after: t)
    }
    _ = schedule.matches(epochSeconds: Int64.min)
    _ = schedule.matches(epochSeconds: Int64.max)
    return 0
}
