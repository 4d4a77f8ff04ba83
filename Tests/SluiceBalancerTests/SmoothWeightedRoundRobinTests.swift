import SluiceBalancer
import Testing

@Suite struct SmoothWeightedRoundRobinTests {
    private func picks(_ rr: inout SmoothWeightedRoundRobin, _ n: Int, excluding: TriedTargets = TriedTargets())
        -> [Int?]
    {
        (0..<n).map { _ in rr.next(excluding: excluding) }
    }

    @Test func classicSmoothSequence() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        // a a b a c a a, twice: the state returns to zero after each full cycle.
        #expect(picks(&rr, 14) == [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0])
    }

    @Test func equalWeightsRotate() {
        var rr = SmoothWeightedRoundRobin(weights: [1, 1, 1])
        #expect(picks(&rr, 6) == [0, 1, 2, 0, 1, 2])
    }

    @Test func sharesAreExactPerCycle() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 3, 2])
        var total = [0, 0, 0]
        for _ in 0..<1000 {
            var cycle = [0, 0, 0]
            for _ in 0..<10 { cycle[rr.next()!] += 1 }
            #expect(cycle == [5, 3, 2])
            for i in 0..<3 { total[i] += cycle[i] }
        }
        #expect(total == [5000, 3000, 2000])
    }

    @Test func largeWeightsShareExactly() {
        let weights = [999, 1, 500, 250, 0, 7]
        var rr = SmoothWeightedRoundRobin(weights: weights)
        var counts = [Int](repeating: 0, count: weights.count)
        for _ in 0..<weights.reduce(0, +) { counts[rr.next()!] += 1 }
        #expect(counts == weights)
    }

    @Test func weightZeroIsNeverPicked() {
        var rr = SmoothWeightedRoundRobin(weights: [0, 3, 0, 1])
        let seen = Set(picks(&rr, 10_000))
        #expect(seen == [1, 3])
    }

    @Test func allZeroOrEmptyGivesNil() {
        var zero = SmoothWeightedRoundRobin(weights: [0, 0, 0])
        #expect(zero.next() == nil)
        var empty = SmoothWeightedRoundRobin(weights: [])
        #expect(empty.next() == nil)
    }

    @Test func excludingSkipsTriedTargets() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        var tried = TriedTargets()
        tried.insert(0)
        #expect(picks(&rr, 4, excluding: tried) == [1, 2, 1, 2])
        tried.insert(1)
        #expect(picks(&rr, 3, excluding: tried) == [2, 2, 2])
        tried.insert(2)
        #expect(rr.next(excluding: tried) == nil)
        // Without exclusions the long-run shares are still 5:1:1.
        var counts = [0, 0, 0]
        for _ in 0..<7000 { counts[rr.next()!] += 1 }
        #expect(abs(counts[0] - 5000) <= 5 && abs(counts[1] - 1000) <= 5 && abs(counts[2] - 1000) <= 5)
    }

    @Test func setWeightsChangesShares() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        _ = picks(&rr, 3)  // leave the rotation mid-cycle
        rr.setWeights([1, 1, 2])
        #expect(rr.weights == [1, 1, 2])
        var counts = [0, 0, 0]
        for _ in 0..<4000 { counts[rr.next()!] += 1 }
        #expect(abs(counts[0] - 1000) <= 3 && abs(counts[1] - 1000) <= 3 && abs(counts[2] - 2000) <= 3)

        rr.setWeights([1, 0, 1])
        #expect(!picks(&rr, 100).contains(1))

        rr.setWeights([1, 0, 1, 1])  // a target added
        var added = [0, 0, 0, 0]
        for _ in 0..<300 { added[rr.next()!] += 1 }
        #expect(added[1] == 0 && abs(added[3] - 100) <= 2)

        rr.setWeights([0, 0])  // targets removed, none left
        #expect(rr.next() == nil)
    }

    @Test func setWeightsWithSameWeightsKeepsTheRotation() {
        var a = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        var b = a
        _ = picks(&a, 3)
        _ = picks(&b, 3)
        b.setWeights([5, 1, 1])
        #expect(picks(&a, 20) == picks(&b, 20))
    }
}
