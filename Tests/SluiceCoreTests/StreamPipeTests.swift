import Testing
@testable import SluiceCore

@Suite struct StreamPipeTests {
    /// Reads everything the local side can get, in chunks of `chunk`.
    func drain(_ p: StreamPipe, chunk: Int) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: chunk)
        while true {
            let r = buf.withUnsafeMutableBytes { p.read(into: $0.baseAddress!, count: chunk) }
            switch r {
            case .bytes(let n): out += buf[..<n]
            case .drained(let n):
                out += buf[..<n]
                return out
            default: return out
            }
        }
    }

    @Test func pushAllKeepsOrderBeyondCapacityAndCreditsWhatWasRead() {
        let p = StreamPipe(capacity: 1024, queue: StreamPipeQueue())
        let a = (0..<3000).map { UInt8(truncatingIfNeeded: $0) }
        let b = (0..<500).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        a.withUnsafeBytes { p.pushAll($0) }
        b.withUnsafeBytes { p.pushAll($0) }
        #expect(p.inboundSpace == 0, "the pipe holds its capacity, the rest waits")
        let got = drain(p, chunk: 700)
        #expect(got == a + b)
        #expect(p.takeConsumed() == 3500)
        let r = [UInt8](repeating: 0, count: 8).withUnsafeBufferPointer { _ in
            var x: UInt8 = 0
            return p.read(into: &x, count: 1)
        }
        #expect(r == .wouldBlock)
    }

    @Test func resetDropsWhatWaited() {
        let p = StreamPipe(capacity: 1024, queue: StreamPipeQueue())
        [UInt8](repeating: 1, count: 5000).withUnsafeBytes { p.pushAll($0) }
        p.reset()
        [UInt8](repeating: 2, count: 10).withUnsafeBytes { p.pushAll($0) }
        #expect(drain(p, chunk: 64) == [UInt8](repeating: 2, count: 10))
    }
}
