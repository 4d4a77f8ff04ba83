import Testing

@testable import SluiceProxy

/// The surge queue's ring and queue without sockets: FIFO order against a model, the limit,
/// putting a waiter back at the head, removal from the middle, growth across the wrap point,
/// and the shared length the hot path reads.
@Suite struct SurgeRingTests {
    @Test func firstInFirstOutWithinTheLimit() {
        var r = SurgeRing<Int>()
        for i in 0..<5 {
            let ok = r.append(i, limit: 5)
            #expect(ok)
        }
        let added0 = r.append(5, limit: 5)
        #expect(!added0, "full at the limit")
        #expect(r.count == 5)
        let first = r.popFirst()
        #expect(first == 0)
        let added1 = r.append(5, limit: 5)
        #expect(added1)
        #expect(r.elements == [1, 2, 3, 4, 5])
        var out: [Int] = []
        while let e = r.popFirst() { out.append(e) }
        #expect(out == [1, 2, 3, 4, 5])
        #expect(r.isEmpty)
        let none = r.popFirst()
        #expect(none == nil)
    }

    @Test func prependPutsBackAtTheHeadBeyondTheLimit() {
        var r = SurgeRing<Int>()
        let added2 = r.append(1, limit: 2)
        #expect(added2)
        let added3 = r.append(2, limit: 2)
        #expect(added3)
        r.prepend(0)
        #expect(r.elements == [0, 1, 2])
        let added4 = r.append(3, limit: 2)
        #expect(!added4, "a smaller limit keeps what is queued, takes nothing new")
    }

    @Test func removeKeepsTheOrderOfTheOthers() {
        var r = SurgeRing<Int>()
        for i in 0..<6 { _ = r.append(i, limit: 100) }
        _ = r.popFirst()
        _ = r.popFirst()
        for i in 6..<10 { _ = r.append(i, limit: 100) }  // wraps around the 8-slot storage
        let seven = r.remove { $0 == 7 }
        let missing = r.remove { $0 == 42 }
        #expect(seven == 7)
        #expect(missing == nil)
        #expect(r.elements == [2, 3, 4, 5, 6, 8, 9])
    }

    @Test func matchesAModelUnderRandomOperations() {
        var r = SurgeRing<Int>()
        var model: [Int] = []
        var seed: UInt64 = 0x5EED
        var next = 0
        for _ in 0..<20_000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            switch (seed >> 33) % 5 {
            case 0, 1:
                let ok = r.append(next, limit: 64)
                #expect(ok == (model.count < 64))
                if ok { model.append(next) }
                next += 1
            case 2:
                let head = r.popFirst()
                #expect(head == model.first)
                if !model.isEmpty { model.removeFirst() }
            case 3:
                r.prepend(next)
                model.insert(next, at: 0)
                next += 1
            default:
                if let victim = model.isEmpty ? nil : model[Int((seed >> 40) % UInt64(model.count))] {
                    let removed = r.remove { $0 == victim }
                    #expect(removed == victim)
                    model.removeAll { $0 == victim }
                }
            }
            #expect(r.count == model.count)
        }
        #expect(r.elements == model)
    }

    @Test func queueKeepsItsLengthForTheHotPath() {
        let q = SurgeQueues.shared.queue(for: "surge-ring-test")
        #expect(q === SurgeQueues.shared.queue(for: "surge-ring-test"), "one queue per group name")
        #expect(q.isEmpty)
        let w = { (slot: Int32) in SurgeWaiter(worker: 0, layer: .http, slot: slot, generation: 1, since: 10) }
        #expect(q.enqueue(w(1), limit: 2))
        #expect(q.enqueue(w(2), limit: 2))
        #expect(!q.enqueue(w(3), limit: 2))
        #expect(q.count == 2 && SurgeQueues.shared.length(group: "surge-ring-test") == 2)
        #expect(q.remove(w(2)))
        #expect(!q.remove(w(2)), "already gone: a handoff for it passes the slot on")
        #expect(q.popHead() == w(1))
        q.requeue(w(1))
        #expect(q.count == 1)
        #expect(q.popHead() == w(1))
        #expect(q.isEmpty && q.popHead() == nil)
        #expect(SurgeQueues.shared.length(group: "no-such-group") == 0)
    }
}
