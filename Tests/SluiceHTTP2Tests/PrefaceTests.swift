import Testing
@testable import SluiceHTTP2

@Suite struct PrefaceTests {
    @Test func prefaceIsTheRFCBytes() {
        #expect(HTTP2.clientPreface.count == 24)
        #expect(HTTP2.clientPreface.prefix(3) == [0x50, 0x52, 0x49])
    }
}
