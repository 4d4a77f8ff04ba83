import SluiceBalancer
import Testing

@Suite struct StickyIndexTests {
    private let keys = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "[fd00::7]:8443"]
    private let secret: UInt64 = 0x5ec2_e7ab_cdef_0123

    private func target(_ index: StickyIndex, _ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { index.target(forCookie: $0) }
    }

    @Test func roundTrip() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        #expect(index.targetCount == 4)
        for t in keys.indices {
            let value = index.cookieValue(for: t)
            #expect(value.utf8.count == StickyIndex.cookieValueLength)
            #expect(value.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            #expect(index.target(forCookie: value) == t)
            #expect(target(index, Array(value.utf8)) == t)
        }
    }

    @Test func valueIsTheHexOfTheKeysStableHash() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        for t in keys.indices {
            let h = StableHash.hash(keys[t], seed: secret)
            #expect(index.cookieHash(for: t) == h)
            let hex = String(h, radix: 16)
            #expect(index.cookieValue(for: t) == String(repeating: "0", count: 16 - hex.count) + hex)
        }
        // Pinned: cookies already handed out must keep working after an upgrade.
        #expect(StickyIndex(targetKeys: ["10.0.0.1:8080"], secret: 1).cookieValue(for: 0) == "7a11d4b325dad0dc")
    }

    @Test func valueDependsOnlyOnKeyAndSecret() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        let reordered = StickyIndex(targetKeys: ["10.0.0.9:80"] + keys.reversed(), secret: secret)
        for t in keys.indices {
            let value = index.cookieValue(for: t)
            #expect(reordered.target(forCookie: value) == keys.count - t)
        }
        // Another secret: other values, and the old cookies name nothing.
        let other = StickyIndex(targetKeys: keys, secret: secret ^ 1)
        for t in keys.indices {
            #expect(other.cookieValue(for: t) != index.cookieValue(for: t))
            #expect(other.target(forCookie: index.cookieValue(for: t)) == nil)
        }
    }

    @Test func unknownCookieIsNil() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        #expect(index.target(forCookie: "0000000000000000") == nil)
        #expect(index.target(forCookie: "ffffffffffffffff") == nil)
        // A target that left the group.
        let old = StickyIndex(targetKeys: ["10.0.0.5:80"], secret: secret).cookieValue(for: 0)
        #expect(index.target(forCookie: old) == nil)
        #expect(StickyIndex(targetKeys: [], secret: secret).target(forCookie: old) == nil)
    }

    @Test func malformedCookieIsNil() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        let good = index.cookieValue(for: 2)
        let head15: String = String(good.dropLast())
        let tail15: String = String(good.dropFirst())
        let tail14: String = String(good.dropFirst(2))
        let quote = "\""
        let bad: [String] = [
            "", head15, good + "0", "0" + good, head15 + "g", " " + tail15, "0x" + tail14,
            quote + good, good + quote, quote + quote + tail14, "-" + tail15,
        ]
        for bad in bad {
            #expect(index.target(forCookie: bad) == nil, "\(bad)")
        }
        #expect(target(index, []) == nil)
        #expect(target(index, [UInt8](repeating: 0, count: 16)) == nil)
    }

    @Test func upperCaseAndQuotedValuesAreAccepted() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        for t in keys.indices {
            let value = index.cookieValue(for: t)
            #expect(index.target(forCookie: value.uppercased()) == t)
            #expect(index.target(forCookie: "\"" + value + "\"") == t)
        }
    }

    @Test func writesIntoABuffer() {
        let index = StickyIndex(targetKeys: keys, secret: secret)
        var buffer = [UInt8](repeating: 0x2e, count: 20)
        let written = buffer.withUnsafeMutableBytes { index.writeCookieValue(for: 1, to: $0) }
        #expect(written == 16)
        #expect(String(decoding: buffer.prefix(16), as: UTF8.self) == index.cookieValue(for: 1))
        #expect(buffer.suffix(4) == [0x2e, 0x2e, 0x2e, 0x2e])
    }

    @Test func parseCookieValue() {
        func parse(_ s: String) -> UInt64? {
            Array(s.utf8).withUnsafeBytes { StickyIndex.parseCookieValue($0) }
        }
        #expect(parse("0123456789abcdef") == 0x0123_4567_89ab_cdef)
        #expect(parse("FEDCBA9876543210") == 0xfedc_ba98_7654_3210)
        #expect(parse("\"000000000000002a\"") == 42)
        #expect(parse("12345") == nil)
    }

    @Test func duplicateKeysLeadToTheLowerIndex() {
        let index = StickyIndex(targetKeys: ["a", "b", "a"], secret: secret)
        #expect(index.cookieValue(for: 0) == index.cookieValue(for: 2))
        #expect(index.target(forCookie: index.cookieValue(for: 2)) == 0)
        #expect(index.target(forCookie: index.cookieValue(for: 1)) == 1)
    }
}
