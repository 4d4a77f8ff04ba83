import SluiceBalancer
import Testing

@Suite struct TargetPickerTests {
    private let none = TriedTargets()

    @Test func roundRobinDispatches() {
        var picker = TargetPicker(algorithm: .roundRobin, weights: [5, 1, 1], maglev: nil)
        #expect((0..<7).map { _ in picker.pick(hash: 0, excluding: none) } == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test func flowHashUsesTheTable() {
        let keys = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
        let table = MaglevTable(keys: keys, weights: [1, 1, 1], size: 251)
        var picker = TargetPicker(algorithm: .flowHash, weights: [1, 1, 1], maglev: table)
        var random = TestRandom(seed: 9)
        for _ in 0..<500 {
            let h = random.next()
            let target = picker.pick(hash: h, excluding: none)
            #expect(target == table.lookup(h))
            #expect(picker.pick(hash: h, excluding: none) == target)  // same flow, same target
            var tried = TriedTargets()
            tried.insert(target!)
            #expect(picker.pick(hash: h, excluding: tried) == table.lookup(h, excluding: tried))
        }
    }

    @Test func flowHashWithoutTableFallsBackToRoundRobin() {
        var picker = TargetPicker(algorithm: .flowHash, weights: [1, 1], maglev: nil)
        #expect((0..<4).map { _ in picker.pick(hash: 42, excluding: none) } == [0, 1, 0, 1])
        let table = MaglevTable(keys: ["a", "b"], weights: [1, 1], size: 251)
        picker.setMaglev(table)
        #expect(picker.pick(hash: 42, excluding: none) == table.lookup(42))
    }

    @Test func pickRoundRobinIgnoresTheAlgorithm() {
        let table = MaglevTable(keys: ["a", "b", "c"], weights: [1, 1, 1], size: 251)
        var picker = TargetPicker(algorithm: .flowHash, weights: [1, 1, 1], maglev: table)
        #expect((0..<3).map { _ in picker.pickRoundRobin(excluding: none) } == [0, 1, 2])
    }

    @Test func openedAndClosedCount() {
        var picker = TargetPicker(algorithm: .roundRobin, weights: [1, 1], maglev: nil)
        #expect(picker.targetCount == 2)
        picker.opened(1)
        picker.opened(1)
        picker.opened(0)
        #expect(picker.outstanding(0) == 1 && picker.outstanding(1) == 2)
        picker.closed(1)
        #expect(picker.outstanding(1) == 1)
        picker.closed(1)
        picker.closed(0)
        #expect(picker.outstanding(0) == 0 && picker.outstanding(1) == 0)
    }

    @Test func leastOutstandingFollowsCounts() {
        var picker = TargetPicker(algorithm: .leastOutstanding, weights: [1, 1, 1], maglev: nil)
        picker.opened(0)
        picker.opened(0)
        picker.opened(1)
        #expect(picker.pick(hash: 0, excluding: none) == 2)
        picker.opened(2)
        picker.opened(2)
        #expect(picker.pick(hash: 0, excluding: none) == 1)
        picker.closed(0)
        picker.closed(0)
        #expect(picker.pick(hash: 0, excluding: none) == 0)
        var tried = TriedTargets()
        tried.insert(0)
        #expect(picker.pick(hash: 0, excluding: tried) == 1)
    }

    @Test func leastOutstandingSpreadsOpenConnections() {
        var picker = TargetPicker(algorithm: .leastOutstanding, weights: [2, 1, 1], maglev: nil)
        for _ in 0..<400 { picker.opened(picker.pick(hash: 0, excluding: none)!) }
        #expect((0..<3).map { picker.outstanding($0) } == [200, 100, 100])
    }

    @Test func setWeightsKeepsCounts() {
        var picker = TargetPicker(algorithm: .leastOutstanding, weights: [1, 1], maglev: nil)
        picker.opened(0)
        picker.opened(1)
        picker.setWeights([0, 1])
        #expect(picker.outstanding(0) == 1 && picker.outstanding(1) == 1)
        #expect(picker.pick(hash: 0, excluding: none) == 1)
        var rr = TargetPicker(algorithm: .roundRobin, weights: [1, 1], maglev: nil)
        rr.setWeights([1, 0])
        #expect((0..<3).map { _ in rr.pick(hash: 0, excluding: none) } == [0, 0, 0])
    }
}
