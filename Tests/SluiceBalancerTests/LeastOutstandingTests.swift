import SluiceBalancer
import Testing

@Suite struct LeastOutstandingTests {
    private func next(_ picker: inout LeastOutstanding, _ counts: [Int], excluding: TriedTargets = TriedTargets())
        -> Int?
    {
        counts.withUnsafeBufferPointer { picker.next(outstanding: $0, excluding: excluding) }
    }

    @Test func picksTheMinimum() {
        var picker = LeastOutstanding(weights: [1, 1, 1, 1])
        #expect(next(&picker, [3, 1, 2, 5]) == 1)
        #expect(next(&picker, [3, 4, 2, 5]) == 2)
        #expect(next(&picker, [0, 4, 2, 5]) == 0)
    }

    @Test func tiesRotate() {
        var picker = LeastOutstanding(weights: [1, 1, 1])
        #expect((0..<6).map { _ in next(&picker, [0, 0, 0]) } == [0, 1, 2, 0, 1, 2])
        // Only the tied targets take part in the rotation.
        #expect((0..<4).map { _ in next(&picker, [2, 7, 2]) } == [0, 2, 0, 2])
    }

    @Test func weightsScaleTheLoad() {
        var picker = LeastOutstanding(weights: [2, 1])
        #expect(next(&picker, [1, 1]) == 0)  // 1/2 < 1/1
        #expect(next(&picker, [3, 1]) == 1)  // 3/2 > 1/1
        // Equal load per weight: smooth round robin by weight among the tied, 2:1.
        var counts = [0, 0]
        for _ in 0..<300 { counts[next(&picker, [4, 2])!] += 1 }
        #expect(counts == [200, 100])
    }

    @Test func loadConvergesToWeights() {
        // Connections that never close: the counts end up proportional to the weights.
        var picker = LeastOutstanding(weights: [3, 1, 0, 2])
        var outstanding = [0, 0, 0, 0]
        for _ in 0..<600 { outstanding[next(&picker, outstanding)!] += 1 }
        #expect(outstanding == [300, 100, 0, 200])
    }

    @Test func skipsWeightZeroAndExcluded() {
        var picker = LeastOutstanding(weights: [1, 0, 1])
        #expect(next(&picker, [5, 0, 6]) == 0)
        var tried = TriedTargets()
        tried.insert(0)
        #expect(next(&picker, [5, 0, 6], excluding: tried) == 2)
        tried.insert(2)
        #expect(next(&picker, [5, 0, 6], excluding: tried) == nil)
        var zero = LeastOutstanding(weights: [0, 0])
        #expect(next(&zero, [0, 0]) == nil)
    }

    @Test func setWeightsApplies() {
        var picker = LeastOutstanding(weights: [1, 1])
        #expect(next(&picker, [2, 1]) == 1)
        picker.setWeights([4, 1])  // 2/4 < 1/1
        #expect(picker.weights == [4, 1])
        #expect(next(&picker, [2, 1]) == 0)
        picker.setWeights([0, 1])
        #expect(next(&picker, [0, 9]) == 1)
    }
}
