import Testing
@testable import SluiceCore

@Suite struct TimerWheelTests {
    let ms: UInt64 = 1_000_000

    @Test func firesAtOrAfterDeadlineNeverBefore() {
        var wheel = TimerWheel(tick: 10 * ms, slotCount: 64, now: 0)
        wheel.schedule(1, at: 25 * ms)
        var fired: [UInt64] = []
        wheel.advance(to: 24 * ms, into: &fired)
        #expect(fired.isEmpty)
        wheel.advance(to: 29 * ms, into: &fired)
        #expect(fired.isEmpty, "slot of 25 ms is the 30 ms tick")
        wheel.advance(to: 30 * ms, into: &fired)
        #expect(fired == [1])
        #expect(wheel.count == 0)
    }

    @Test func deadlinesBeyondOneTurnWaitForTheirTurn() {
        var wheel = TimerWheel(tick: 10 * ms, slotCount: 8, now: 0)  // one turn = 80 ms
        wheel.schedule(7, at: 250 * ms)
        var fired: [UInt64] = []
        var t: UInt64 = 0
        while t < 250 * ms {
            wheel.advance(to: t, into: &fired)
            #expect(fired.isEmpty, "fired early at \(t / ms) ms")
            t += 5 * ms
        }
        wheel.advance(to: 250 * ms, into: &fired)
        #expect(fired == [7])
    }

    @Test func largeJumpFiresEverythingDue() {
        var wheel = TimerWheel(tick: 10 * ms, slotCount: 16, now: 0)
        for i in 0..<100 { wheel.schedule(UInt64(i), at: UInt64(i) * 7 * ms) }
        var fired: [UInt64] = []
        wheel.advance(to: 10_000 * ms, into: &fired)
        #expect(fired.sorted() == (0..<100).map(UInt64.init))
        #expect(wheel.count == 0)
    }

    @Test func pastDeadlineFiresOnNextTick() {
        var wheel = TimerWheel(tick: 10 * ms, slotCount: 16, now: 100 * ms)
        wheel.schedule(3, at: 50 * ms)
        var fired: [UInt64] = []
        wheel.advance(to: 110 * ms, into: &fired)
        #expect(fired == [3])
    }

    @Test func orderAcrossSlotsIsByDeadline() {
        var wheel = TimerWheel(tick: 1 * ms, slotCount: 1024, now: 0)
        wheel.schedule(2, at: 20 * ms)
        wheel.schedule(1, at: 10 * ms)
        wheel.schedule(3, at: 30 * ms)
        var fired: [UInt64] = []
        var t: UInt64 = 0
        while t <= 30 * ms {
            wheel.advance(to: t, into: &fired)
            t += ms
        }
        #expect(fired == [1, 2, 3])
    }

    @Test func timeoutHintIsBoundedByTick() {
        var wheel = TimerWheel(tick: 10 * ms, slotCount: 16, now: 0)
        #expect(wheel.nextTimeoutMillis(now: 0) == -1)
        wheel.schedule(1, at: 1_000 * ms)
        let hint = wheel.nextTimeoutMillis(now: 3 * ms)
        #expect(hint >= 1 && hint <= 10)
    }
}

@Suite struct FdTableTests {
    @Test func staleTokensAreDropped() {
        var table = FdTable(initialCapacity: 4)
        let first = table.register(9, owner: .clientSide, index: 3)
        #expect(table.lookup(first)?.entry.index == 3)
        table.unregister(9)
        #expect(table.lookup(first) == nil)
        let second = table.register(9, owner: .targetSide, index: 5)
        #expect(first != second)
        #expect(table.lookup(first) == nil, "an event for the old descriptor must not reach the new owner")
        #expect(table.lookup(second)?.entry.owner == .targetSide)
    }
}

@Suite struct SocketAddressTests {
    @Test func parsesAndPrintsBothFamilies() throws {
        let v4 = try #require(SocketAddress(host: "127.0.0.1", port: 8080))
        #expect(v4.description == "127.0.0.1:8080")
        #expect(!v4.isIPv6)
        let v6 = try #require(SocketAddress(host: "::1", port: 443))
        #expect(v6.description == "[::1]:443")
        #expect(v6.port == 443)
        #expect(SocketAddress(host: "example", port: 1) == nil)
    }
}
