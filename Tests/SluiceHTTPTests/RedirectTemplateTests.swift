import Testing
@testable import SluiceHTTP

/// Writes the redirect for `raw` (one request head) and returns the response text, or nil.
private func redirect(
    _ t: RedirectTemplate, _ raw: [UInt8], port: UInt16 = 8080, connection: ConnectionHeader = .none,
    room: Int = 80 * 1024
) -> String? {
    let (result, parser) = parseRequest(raw)
    guard result == .complete else { return "parse: \(result)" }
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: room, alignment: 1)
    defer { out.deallocate() }
    let n = raw.withUnsafeBytes {
        t.write(for: parser.head, source: $0, listenerPort: port, connection: connection, into: out)
    }
    return n.map { String(decoding: UnsafeRawBufferPointer(rebasing: out[0..<$0]), as: UTF8.self) }
}

private func location(_ response: String?) -> String? {
    guard let r = response else { return nil }
    for line in r.split(separator: "\r\n") where line.hasPrefix("location: ") {
        return String(line.dropFirst("location: ".count))
    }
    return "no location in \(r)"
}

private func get(_ target: String, host: String = "test.local:8080", version: String = "1.1") -> [UInt8] {
    bytes("GET \(target) HTTP/\(version)\r\nHost: \(host)\r\n\r\n")
}

struct RedirectTemplateTests {
    @Test func compilesIntoLiteralsAndPlaceholders() {
        #expect(RedirectTemplate.compile("/new/#{path}") == [.literal(bytes("/new/")), .placeholder(.path)])
        #expect(RedirectTemplate.compile("#{host}#{port}") == [.placeholder(.host), .placeholder(.port)])
        #expect(RedirectTemplate.compile("a#{x}b#{query") == [.literal(bytes("a#{x}b#{query"))], "unknown stays text")
        #expect(RedirectTemplate.compile("") == [])
    }

    @Test func partsLeftOutKeepTheRequestsValues() {
        let t = RedirectTemplate(status: 301, scheme: nil, host: nil, port: nil, path: "/new/#{path}", query: nil)
        let r = redirect(t, get("/old/a/b?q=1"))
        #expect(r?.hasPrefix("HTTP/1.1 301 Moved Permanently\r\n") == true)
        #expect(r?.hasSuffix("\r\ncontent-length: 0\r\n\r\n") == true)
        #expect(location(r) == "http://test.local:8080/new/old/a/b?q=1")
        // The scheme's default port is left out; so is an empty query.
        #expect(location(redirect(t, get("/x", host: "h:80"), port: 80)) == "http://h/new/x")
        let https = RedirectTemplate(status: 302, scheme: "https", host: nil, port: "443", path: nil, query: nil)
        #expect(location(redirect(https, get("/p?"))) == "https://test.local/p")
        #expect(location(redirect(https, get("/p", host: "[::1]:8080"))) == "https://[::1]/p")
        // A path template without a leading slash gets one; `#{path}` has no slash of its own.
        let bare = RedirectTemplate(status: 302, scheme: nil, host: "example.com", port: "", path: "#{path}",
                                    query: "from=#{host}&#{query}")
        #expect(location(redirect(bare, get("/a?b=c"))) == "http://example.com/a?from=test.local&b=c")
    }

    @Test func theConnectionHeaderFollowsTheCaller() {
        let t = RedirectTemplate(status: 302, scheme: nil, host: "x", port: nil, path: nil, query: nil)
        #expect(redirect(t, get("/"), connection: .close)?.contains("\r\nconnection: close\r\n") == true)
        #expect(redirect(t, get("/"), connection: .keepAlive)?.contains("\r\nconnection: keep-alive\r\n") == true)
        #expect(redirect(t, get("/"), connection: .none)?.contains("connection:") == false)
    }

    @Test func placeholdersInTheRequestAreNotExpanded() {
        // Host and path full of placeholders, each the other's name: copied as text, once.
        let t = RedirectTemplate(status: 301, scheme: nil, host: nil, port: nil, path: "/new/#{path}#{path}",
                                 query: "h=#{host}")
        let hostile = String(repeating: "#{path}", count: 20)
        let path = "/old/" + String(repeating: "#{host}", count: 20)
        let loc = location(redirect(t, get(path, host: "h" + hostile)))
        let pathText = "old/" + String(repeating: "#{host}", count: 20)
        #expect(loc == "http://h\(hostile):8080/new/\(pathText)\(pathText)?h=h\(hostile)")
    }

    @Test func aHostileRequestIsBoundedNotAmplified() {
        // 16 KB of Host and 15 KB of path, each made of the other's placeholder: before, every
        // substitution re-expanded the other (seconds, ~100 MB). Now the Location is bounded.
        let t = RedirectTemplate(status: 301, scheme: nil, host: nil, port: nil, path: "/new/#{path}", query: nil)
        let raw = bytes("GET /old/" + String(repeating: "#{host}", count: 2_100) + " HTTP/1.1\r\nHost: h"
                        + String(repeating: "#{path}", count: 2_300) + "\r\n\r\n")
        #expect(raw.count > 30_000)
        #expect(redirect(t, raw) == nil, "a Location beyond maxLocation is refused")
        // Just under the bound: written, and exactly as long as its parts (linear).
        let host = "h" + String(repeating: "#{path}", count: 500)  // 3501 bytes
        let path = "/old/" + String(repeating: "#{host}", count: 600)  // 4205 bytes
        let loc = location(redirect(t, get(path, host: host)))
        let expected = "http://" + host + ":8080" + "/new/" + path.dropFirst()
        #expect(loc?.utf8.count == expected.utf8.count)
        #expect(expected.utf8.count <= RedirectTemplate.maxLocation)
        #expect(loc == expected)
    }

    @Test func controlBytesCannotSplitTheLocationField() {
        // A monitor-mode request may carry odd bytes in the path: percent-encoded.
        let t = RedirectTemplate(status: 302, scheme: nil, host: nil, port: nil, path: nil, query: nil)
        var raw = get("/a%0Db")
        raw[6] = 0x7F  // DEL inside the target
        #expect(location(redirect(t, raw)) == "http://test.local:8080/a%7F0Db")
    }

    @Test func tooLittleRoomIsAFailureNotATruncation() {
        let t = RedirectTemplate(status: 302, scheme: nil, host: nil, port: nil, path: nil, query: nil)
        #expect(redirect(t, get("/abc"), room: 40) == nil)
    }
}

struct CannedResponseTests {
    @Test func connectionHeaderVariants() {
        let close = String(decoding: CannedResponse.bytes(status: 503, connection: .close), as: UTF8.self)
        let keep = String(decoding: CannedResponse.bytes(status: 503, connection: .keepAlive), as: UTF8.self)
        let none = String(decoding: CannedResponse.bytes(status: 503, connection: .none), as: UTF8.self)
        #expect(close.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n") && close.contains("\r\nconnection: close\r\n"))
        #expect(keep.contains("\r\nconnection: keep-alive\r\n"))
        #expect(!none.contains("connection:"))
        #expect(CannedResponse.bytes(status: 503, close: true) == CannedResponse.bytes(status: 503, connection: .close))
    }

    @Test func answersForHTTP10KeepTheConnectionOnlyWhenAsked() {
        #expect(ConnectionHeader.forAnswer(close: false, versionMinor: 0) == .keepAlive)
        #expect(ConnectionHeader.forAnswer(close: true, versionMinor: 0) == .close)
        #expect(ConnectionHeader.forAnswer(close: false, versionMinor: 1) == ConnectionHeader.none)
    }
}
