import SluiceBalancer
import Testing

@Suite struct RandomTwoChoicesTests {
    private func next(_ picker: inout RandomTwoChoices, _ counts: [Int], excluding: TriedTargets = TriedTargets())
        -> Int?
    {
        counts.withUnsafeBufferPointer { picker.next(outstanding: $0, excluding: excluding) }
    }

    /// Picks `n` times with fixed loads and returns how often each target won.
    private func shares(_ picker: inout RandomTwoChoices, _ counts: [Int], _ n: Int = 10_000) -> [Int] {
        var won = [Int](repeating: 0, count: counts.count)
        for _ in 0..<n { won[next(&picker, counts)!] += 1 }
        return won
    }

    @Test func lessLoadedOfTheTwoAlwaysWins() {
        // With two targets both are always drawn, so the less loaded one wins every pick.
        var picker = RandomTwoChoices(weights: [1, 1], seed: 1)
        #expect(shares(&picker, [0, 10], 1000) == [1000, 0])
        #expect(shares(&picker, [10, 0], 1000) == [0, 1000])
    }

    @Test func lessLoadedWinsWhenDrawn() {
        // Loads 0 < 5 < 10 < 20 with equal weights: each of the 6 pairs is drawn with
        // probability 1/6 and its less loaded member wins, so the shares are 3/6, 2/6, 1/6, 0.
        var picker = RandomTwoChoices(weights: [1, 1, 1, 1], seed: 2)
        let won = shares(&picker, [0, 5, 10, 20])
        #expect(abs(won[0] - 5000) <= 250)
        #expect(abs(won[1] - 3333) <= 200)
        #expect(abs(won[2] - 1667) <= 150)
        #expect(won[3] == 0)  // the most loaded target is never picked
    }

    @Test func equalLoadsShareEvenly() {
        var picker = RandomTwoChoices(weights: [1, 1, 1, 1], seed: 3)
        for count in shares(&picker, [0, 0, 0, 0]) {
            #expect(abs(count - 2500) <= 125)  // ±5%
        }
        var busy = RandomTwoChoices(weights: [1, 1, 1, 1], seed: 4)
        for count in shares(&busy, [7, 7, 7, 7]) {
            #expect(abs(count - 2500) <= 125)
        }
    }

    @Test func equalLoadPerWeightSharesByWeight() {
        var picker = RandomTwoChoices(weights: [2, 1, 1], seed: 5)
        let won = shares(&picker, [0, 0, 0])
        #expect(abs(won[0] - 5000) <= 250)
        #expect(abs(won[1] - 2500) <= 125)
        #expect(abs(won[2] - 2500) <= 125)
        // Load compared per weight: 4/2 == 2/1 == 2/1, still shared by weight.
        let scaled = shares(&picker, [4, 2, 2])
        #expect(abs(scaled[0] - 5000) <= 250)
        // 3/2 < 2/1: target 0 wins whenever drawn; it is left out only when 1 and 2 are drawn.
        let lighter = shares(&picker, [3, 2, 2])
        #expect(lighter[0] > 8000)
    }

    @Test func loadConvergesToWeights() {
        // Connections that never close: load per weight stays close for every target.
        var picker = RandomTwoChoices(weights: [3, 1, 2], seed: 6)
        var outstanding = [0, 0, 0]
        for _ in 0..<6000 { outstanding[next(&picker, outstanding)!] += 1 }
        #expect(abs(outstanding[0] - 3000) <= 30)
        #expect(abs(outstanding[1] - 1000) <= 30)
        #expect(abs(outstanding[2] - 2000) <= 30)
    }

    @Test func weightZeroIsNeverPicked() {
        var picker = RandomTwoChoices(weights: [1, 0, 1, 0], seed: 7)
        let won = shares(&picker, [5, 0, 5, 0])  // the weight-0 targets are the least loaded
        #expect(won[1] == 0 && won[3] == 0)
        #expect(abs(won[0] - 5000) <= 250)
        var none = RandomTwoChoices(weights: [0, 0], seed: 7)
        #expect(next(&none, [0, 0]) == nil)
        var empty = RandomTwoChoices(weights: [], seed: 7)
        #expect(next(&empty, []) == nil)
    }

    @Test func excludingIsHonoured() {
        var picker = RandomTwoChoices(weights: [1, 1, 1], seed: 8)
        var tried = TriedTargets()
        tried.insert(0)
        var won = [0, 0, 0]
        for _ in 0..<1000 { won[next(&picker, [0, 5, 5], excluding: tried)!] += 1 }
        #expect(won[0] == 0 && won[1] > 400 && won[2] > 400)
        tried.insert(2)
        #expect((0..<10).allSatisfy { _ in next(&picker, [0, 5, 5], excluding: tried) == 1 })
        tried.insert(1)
        #expect(next(&picker, [0, 5, 5], excluding: tried) == nil)
    }

    @Test func sameSeedSameSequence() {
        var a = RandomTwoChoices(weights: [1, 2, 3, 4, 5], seed: 42)
        var b = RandomTwoChoices(weights: [1, 2, 3, 4, 5], seed: 42)
        var c = RandomTwoChoices(weights: [1, 2, 3, 4, 5], seed: 43)
        let loads = [0, 0, 0, 0, 0]
        let sa = (0..<200).map { _ in next(&a, loads)! }
        let sb = (0..<200).map { _ in next(&b, loads)! }
        let sc = (0..<200).map { _ in next(&c, loads)! }
        #expect(sa == sb)
        #expect(sa != sc)
    }

    @Test func setWeightsApplies() {
        var picker = RandomTwoChoices(weights: [1, 1, 1], seed: 9)
        #expect(picker.count == 3)
        picker.setWeights([0, 1, 0])
        #expect(picker.weights == [0, 1, 0])
        #expect((0..<10).allSatisfy { _ in next(&picker, [0, 9, 0]) == 1 })
    }
}
