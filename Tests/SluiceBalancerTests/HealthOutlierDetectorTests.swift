import SluiceBalancer
import Testing

private func fail(_ detector: inout OutlierDetector, now: UInt64, allowed: Bool = true) -> Bool {
    detector.recordFailure(now: now, allowed: allowed)
}

@Suite struct HealthOutlierDetectorTests {
    private let second: UInt64 = 1_000_000_000

    @Test func ejectsAfterThresholdFailuresInARow() {
        var detector = OutlierDetector()
        #expect(!fail(&detector, now: 0))
        #expect(!fail(&detector, now: 1))
        detector.recordSuccess()  // breaks the run
        #expect(!fail(&detector, now: 2))
        #expect(!fail(&detector, now: 3))
        #expect(fail(&detector, now: 4))
        #expect(detector.isEjected(now: 4))
        #expect(detector.isEjected(now: 4 + 5 * second - 1))
        #expect(!detector.isEjected(now: 4 + 5 * second))
        #expect(detector.wasEjected)
        // Failures of requests in flight while ejected do not count.
        #expect(!fail(&detector, now: 5))
        #expect(detector.consecutiveFailures == 0)
        detector.recordSuccess()
        #expect(!detector.wasEjected)
    }

    @Test func backOffGrowsAndIsCapped() {
        var detector = OutlierDetector()
        var now: UInt64 = 0
        var periods: [UInt64] = []
        for _ in 0..<9 {
            periods.append(detector.eject(now: now) / second)
            now = detector.ejectedUntil  // ejected again as soon as it is back
        }
        #expect(periods == [5, 10, 20, 40, 80, 160, 300, 300, 300])
        #expect(detector.backoff(level: 1_000) == 300 * second)
    }

    @Test func backOffDecaysWhileTheTargetStaysGood() {
        var detector = OutlierDetector()
        var now: UInt64 = 0
        for _ in 0..<4 { now = now + detector.eject(now: now) }  // levels 1...4, the last ends at `now`
        #expect(detector.level == 4)
        // Two whole decay periods (2 min) later: two levels down, so the next is level 3 (20s).
        let decayed = detector.eject(now: now + 150 * second)
        #expect(decayed == 20 * second)
        now = detector.ejectedUntil
        // Long enough and it starts over.
        let reset = detector.eject(now: now + 3_600 * second)
        #expect(reset == 5 * second)
    }

    @Test func atMostHalfAGroupIsEjected() {
        #expect(!OutlierDetector.mayEject(ejectedCount: 0, total: 0))
        #expect(!OutlierDetector.mayEject(ejectedCount: 0, total: 1))
        #expect(OutlierDetector.mayEject(ejectedCount: 0, total: 2))
        #expect(!OutlierDetector.mayEject(ejectedCount: 1, total: 2))
        #expect(!OutlierDetector.mayEject(ejectedCount: 1, total: 3))
        #expect(OutlierDetector.mayEject(ejectedCount: 1, total: 4))
        #expect(!OutlierDetector.mayEject(ejectedCount: 2, total: 4))
        #expect(OutlierDetector.mayEject(ejectedCount: 4, total: 10))
        #expect(!OutlierDetector.mayEject(ejectedCount: 5, total: 10))
    }

    @Test func notAllowedKeepsCountingWithoutEjecting() {
        var detector = OutlierDetector(threshold: 2)
        #expect(!fail(&detector, now: 0, allowed: false))
        #expect(!fail(&detector, now: 1, allowed: false))
        #expect(!detector.isEjected(now: 1))
        #expect(fail(&detector, now: 2, allowed: true))
        #expect(detector.isEjected(now: 3))
    }
}
