import SluiceBalancer
import Testing

@Suite struct HealthSlowStartTests {
    private let window: UInt64 = 100_000_000_000  // 100s

    @Test func rampsLinearlyFromTenPercent() {
        let start: UInt64 = 1_000
        #expect(SlowStart.weight(base: 100, since: start, now: start, window: window) == 10)
        #expect(SlowStart.weight(base: 100, since: start, now: start + window / 2, window: window) == 55)
        #expect(SlowStart.weight(base: 100, since: start, now: start + window - 1, window: window) == 99)
        #expect(SlowStart.weight(base: 100, since: start, now: start + window, window: window) == 100)
        #expect(SlowStart.weight(base: 100, since: start, now: start + 10 * window, window: window) == 100)
        #expect(SlowStart.isRamping(since: start, now: start + window / 2, window: window))
        #expect(!SlowStart.isRamping(since: start, now: start + window, window: window))
    }

    @Test func monotonicAndAtLeastOne() {
        var previous = 0
        for step in 0...100 {
            let weight = SlowStart.weight(base: 1, since: 0, now: UInt64(step) * window / 100, window: window)
            #expect(weight == 1)
            let big = SlowStart.weight(base: 999_000, since: 0, now: UInt64(step) * window / 100, window: window)
            #expect(big >= previous)
            previous = big
        }
        #expect(SlowStart.weight(base: 0, since: 0, now: 0, window: window) == 0)
    }

    @Test func offOrClockBeforeStart() {
        #expect(SlowStart.weight(base: 7, since: 5, now: 6, window: 0) == 7)
        // A clock reading before `since` counts as the start.
        #expect(SlowStart.weight(base: 100, since: 500, now: 100, window: window) == 10)
    }
}
