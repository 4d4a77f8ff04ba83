#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import SluiceConfig

/// Checks of the CLI's own arguments, before anything is sent: a bad one is a usage error (exit 2).
enum Arguments {
    /// Target weights the API accepts.
    static let weightRange = 0...999

    /// `argv` (without the program name) with the options every command takes (`--socket PATH`,
    /// `--socket=PATH`, `--json`) moved to the end, so they may come anywhere, also before the
    /// subcommand (`sluicectl --socket S status`), where ArgumentParser knows no options. Words
    /// after a `--` stay where they are; a `--socket` without a value is left for the parser
    /// to refuse.
    static func hoistingGlobalOptions(_ argv: [String]) -> [String] {
        var rest: [String] = []
        var global: [String] = []
        var i = 0
        while i < argv.count {
            let word = argv[i]
            if word == "--" {
                return rest + global + argv[i...]
            }
            if word == "--json" || word.hasPrefix("--socket=") {
                global.append(word)
            } else if word == "--socket", i + 1 < argv.count {
                global += [word, argv[i + 1]]
                i += 1
            } else {
                rest.append(word)
            }
            i += 1
        }
        return rest + global
    }

    /// `nil` when `text` is a target address the daemon could accept, else what is wrong with it.
    ///
    /// Forms, each with a port from 1 to 65535: `10.0.0.5:8080`, `[::1]:80` (IPv6 in brackets),
    /// `web-1.internal:8080` (a host name; the daemon resolves it). Nothing is resolved here.
    static func addressProblem(_ text: String) -> String? {
        guard !text.isEmpty else { return "the address is empty" }
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return "an IPv6 address needs a closing ]" }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { return rest.isEmpty ? "the port is missing" : "expected :PORT after ]" }
            port = rest.dropFirst()
            guard inet(AF_INET6, host) else { return "\"\(host)\" is not an IPv6 address" }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return "the port is missing" }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") { return "an IPv6 address needs brackets, as in [::1]:80" }
            guard !host.isEmpty else { return "the host is missing" }
            if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
                guard inet(AF_INET, host) else { return "\"\(host)\" is not an IPv4 address" }
            } else if !isHostName(host) {
                return "\"\(host)\" is not a valid host name"
            }
        }
        guard port.count <= 5, !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(port),
            (1...65_535).contains(value)
        else { return port.isEmpty ? "the port is missing" : "port \"\(port)\" is not a number from 1 to 65535" }
        return nil
    }

    /// The usage error for a bad address, or `nil`.
    static func addressError(_ text: String) -> String? {
        addressProblem(text).map { "invalid address \"\(text)\": \($0) (expected HOST:PORT, IPv6 as [::1]:80)" }
    }

    static func weightError(_ weight: Int?) -> String? {
        guard let weight, !weightRange.contains(weight) else { return nil }
        return "invalid weight \(weight): expected a number from \(weightRange.lowerBound) to \(weightRange.upperBound)"
    }

    /// Whole seconds in a duration like `5m`, `90s` or `1h30m` (rounded up), or `nil` when `text` is
    /// not a duration of at least one nanosecond.
    static func seconds(ofDuration text: String) -> UInt64? {
        guard let nanos = DurationParser.parse(text), nanos > 0 else { return nil }
        return nanos / 1_000_000_000 + (nanos % 1_000_000_000 == 0 ? 0 : 1)
    }

    static func zoneError(_ zone: String?) -> String? {
        guard let zone else { return nil }
        if zone.isEmpty || zone.contains(where: { $0.isWhitespace || ($0.asciiValue.map { $0 < 0x20 } ?? false) }) {
            return "invalid zone \"\(zone)\": expected a name without spaces, such as zone-b"
        }
        return nil
    }

    /// `text` as one path segment: every byte but RFC 3986's unreserved characters is
    /// percent-encoded, so `[::1]:80` becomes `%5B%3A%3A1%5D%3A80`.
    static func pathSegment(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return out
    }

    private static func inet(_ family: Int32, _ text: Substring) -> Bool {
        var storage = in6_addr()
        return withUnsafeMutableBytes(of: &storage) { inet_pton(family, String(text), $0.baseAddress) } == 1
    }

    /// RFC 1123 names: dot-separated labels of letters, digits and inner hyphens.
    private static func isHostName(_ host: Substring) -> Bool {
        guard host.utf8.count <= 253 else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
