import CNGHTTP2
import COpenSSL
import Testing

/// The system-library targets TLS and HTTP/2 will use are wired: they import and link.
@Suite struct SystemLibraryTests {
    @Test func openSSLIsVersion3() {
        #expect(OpenSSL_version_num() >= 0x3000_0000)
    }

    @Test func nghttp2IsLinked() throws {
        let info = try #require(nghttp2_version(0))
        #expect(info.pointee.version_num >= 0x013400)  // 1.52, Debian 12
    }
}
