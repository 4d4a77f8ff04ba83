import SluiceCore
import Testing

@Suite struct BufferPoolTests {
    @Test func idleBuffersGoBackAfterAQuietInterval() {
        let pool = BufferPool(bufferSize: 65536, maxPooled: 1024, keepIdle: 4)
        let taken = (0..<100).map { _ in pool.acquire() }
        #expect(pool.allocated == 100 && pool.inUse == 100)
        taken.forEach(pool.release)
        #expect(pool.allocated == 100 && pool.inUse == 0)
        pool.trim()  // the burst used every buffer during this interval: nothing was idle throughout
        #expect(pool.allocated == 100)
        pool.trim()  // a whole interval without use: all but keepIdle go back
        #expect(pool.allocated == 4)
        #expect(!pool.canTrim)
    }

    @Test func buffersInUseDuringAnIntervalAreKept() {
        let pool = BufferPool(bufferSize: 4096, maxPooled: 64, keepIdle: 0)
        let bufs = (0..<10).map { _ in pool.acquire() }
        bufs.forEach(pool.release)
        pool.trim()
        // Steady load of 3 buffers at a time: 7 stay idle for the interval.
        let three = (0..<3).map { _ in pool.acquire() }
        three.forEach(pool.release)
        pool.trim()
        #expect(pool.allocated == 3)
        // The memory is writable end to end.
        let b = pool.acquire()
        b.storeBytes(of: UInt8(7), toByteOffset: 4095, as: UInt8.self)
        #expect(b.load(fromByteOffset: 4095, as: UInt8.self) == 7)
        pool.release(b)
    }

    @Test func theBudgetCountsBuffersInUse() {
        let pool = BufferPool(bufferSize: 4096, maxPooled: 64, budgetBytes: 4096 * 3)
        let a = pool.acquire(), b = pool.acquire()
        #expect(!pool.overBudget)
        let c = pool.acquire()
        #expect(pool.overBudget)
        pool.release(c)
        #expect(!pool.overBudget)
        pool.release(a)
        pool.release(b)
    }
}
