import SluiceBalancer
import Testing

/// These values decide where flows land; a change here moves every flow in every deployment.
@Suite struct StableHashTests {
    private func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { StableHash.hash($0, seed: seed) }
    }

    @Test func knownValuesArePinned() {
        #expect(hash([]) == 0xf52a_15e9_a9b5_e89b)
        #expect(StableHash.hash("") == 0xf52a_15e9_a9b5_e89b)
        #expect(StableHash.hash("a") == 0x02c0_bdbf_4814_20f8)
        #expect(StableHash.hash("10.0.0.1:8080") == 0xe6be_330c_3d44_a2e2)
        #expect(StableHash.hash("10.0.0.1:8080", seed: 1) == 0x7a11_d4b3_25da_d0dc)
        #expect(StableHash.hash("héllo") == 0x18e3_66c2_ac71_cbbe)
        #expect(StableHash.hash("a", seed: 0x6d61_676c_6576_6f66) == 0x44e8_8cf6_22c5_51f3)
    }

    @Test func seedZeroIsFinalisedFNV1a() {
        // FNV-1a 64 of "a" is the published 0xaf63dc4c8601ec8c.
        #expect(StableHash.hash("a") == StableHash.mix(0xaf63_dc4c_8601_ec8c))
    }

    @Test func mixIsSplitmix64Finaliser() {
        #expect(StableHash.mix(0) == 0)
        #expect(StableHash.mix(1) == 0x5692_161d_100b_05e5)
        #expect(StableHash.mix(0x0123_4567_89ab_cdef) == 0xb2c0_58e4_ebb5_112c)
    }

    @Test func stringAndBytesAgree() {
        for s in ["", "x", "192.168.1.20:443", "[2001:db8::1]:80", "zoné-ü"] {
            #expect(StableHash.hash(s) == hash(Array(s.utf8)))
            #expect(StableHash.hash(s, seed: 42) == hash(Array(s.utf8), seed: 42))
        }
    }

    @Test func differentSeedsAndInputsDiffer() {
        let key = "10.1.2.3:9000"
        var seen = Set<UInt64>()
        for seed in UInt64(0)..<64 { seen.insert(StableHash.hash(key, seed: seed)) }
        #expect(seen.count == 64)
        #expect(StableHash.hash("10.1.2.3:9000") != StableHash.hash("10.1.2.3:9001"))
    }

    @Test func outputBitsAreBalanced() {
        // Each output bit should be set about half the time over sequential inputs.
        var ones = [Int](repeating: 0, count: 64)
        let n = 4096
        for i in 0..<n {
            let h = StableHash.hash("target-\(i)")
            for bit in 0..<64 where h & (1 << UInt64(bit)) != 0 { ones[bit] += 1 }
        }
        for count in ones { #expect(abs(count - n / 2) < n / 10) }
    }
}
