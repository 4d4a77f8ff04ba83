// libFuzzer entry point over the HTTP rule matcher (Sources/SluiceHTTP/Rules): compiles random
// rules into a RuleTable and matches random requests (IPv4, IPv6 and IPv4-mapped IPv6 clients)
// against it. Compiled with the Rules sources into one module by `make fuzz FUZZ=RuleMatcherFuzz`.
//
// Properties checked (a violation traps, which libFuzzer reports as a crash):
// * compiling and matching never crash, whatever the patterns and request bytes (invalid UTF-8,
//   stray `%`, `*`/`?` runs, empty values);
// * `RuleTable.match` returns exactly what a slow reference matcher written from the documented
//   semantics returns: first rule whose conditions all hold, else the default action. The
//   reference globs by backtracking over byte arrays, decodes query components up front, and
//   compares CIDRs bit by bit, so it shares no code with the table's fast paths.
//
// Rules are built the way the config builder builds them: CIDRs are 4 or 16 bytes with a prefix in
// range (SourceRange's preconditions are about misuse, not input).

/// Reads the fuzz input front to back; past the end everything is zero.
struct Bytes {
    let data: UnsafeRawBufferPointer
    var i = 0
    init(_ data: UnsafeRawBufferPointer) { self.data = data }
    var isAtEnd: Bool { i >= data.count }
    mutating func byte() -> UInt8 {
        defer { i += 1 }
        return i < data.count ? data[i] : 0
    }
    mutating func int(_ bound: Int) -> Int { Int(byte()) % bound }
}

/// Pattern and request text is drawn from pieces that stress the matcher: wildcards, case,
/// percent escapes, `+`, separators, a two-byte UTF-8 character, and (for request bytes only)
/// bytes that are not valid UTF-8.
let patternPieces: [[UInt8]] = [
    Array("a".utf8), Array("A".utf8), Array("b".utf8), Array("*".utf8), Array("?".utf8), Array("%".utf8),
    Array("2".utf8), Array("f".utf8), Array("F".utf8), Array("+".utf8), Array(" ".utf8), Array("é".utf8),
    Array("/".utf8), Array(".".utf8), Array("x-".utf8), Array("**".utf8),
]
let requestPieces: [[UInt8]] = patternPieces.filter { $0 != Array("*".utf8) && $0 != Array("**".utf8) } + [
    Array("*".utf8), [0xC3], [0xA9], [0x80], [0xFF], Array("&".utf8), Array("=".utf8), Array("%41".utf8),
    Array("%2a".utf8), Array("%c3%a9".utf8), Array("\t".utf8), Array("É".utf8),
]

func text(_ r: inout Bytes, _ pieces: [[UInt8]]) -> [UInt8] {
    var out: [UInt8] = []
    for _ in 0..<r.int(6) { out += pieces[r.int(pieces.count)] }
    return out
}
func patternText(_ r: inout Bytes) -> String { String(decoding: text(&r, patternPieces), as: UTF8.self) }

#if canImport(Glibc)
internal import Glibc
#endif

// MARK: reference matcher

func lower(_ b: UInt8) -> UInt8 { (0x41...0x5A).contains(b) ? b + 0x20 : b }

/// Backtracking glob over bytes: `*` any run of bytes, `?` one byte plus the continuation bytes
/// after it (one UTF-8 character), anything else itself.
func refGlob(_ p: [UInt8], _ s: [UInt8]) -> Bool {
    var memo = [Int: Bool]()
    func go(_ pi: Int, _ si: Int) -> Bool {
        let key = pi * (s.count + 1) + si
        if let v = memo[key] { return v }
        var result: Bool
        if pi == p.count {
            result = si == s.count
        } else if p[pi] == 0x2A {
            result = false
            var k = si
            while k <= s.count {
                if go(pi + 1, k) { result = true; break }
                k += 1
            }
        } else if si == s.count {
            result = false
        } else if p[pi] == 0x3F {
            var k = si + 1
            while k < s.count, s[k] & 0xC0 == 0x80 { k += 1 }
            result = go(pi + 1, k)
        } else {
            result = p[pi] == s[si] && go(pi + 1, si + 1)
        }
        memo[key] = result
        return result
    }
    return go(0, 0)
}

func refMatch(_ pattern: String, _ input: [UInt8], fold: Bool) -> Bool {
    let p = Array(pattern.utf8)
    return fold ? refGlob(p.map(lower), input.map(lower)) : refGlob(p, input)
}

/// `%XX` one byte, `+` a space, other bytes themselves; lowercased.
func refDecode(_ s: [UInt8]) -> [UInt8] {
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x61...0x66: return b - 0x61 + 10
        case 0x41...0x46: return b - 0x41 + 10
        default: return nil
        }
    }
    var out: [UInt8] = []
    var i = 0
    while i < s.count {
        if s[i] == 0x25, i + 2 < s.count, let h = hex(s[i + 1]), let l = hex(s[i + 2]) {
            out.append(lower(h << 4 | l))
            i += 3
        } else {
            out.append(s[i] == 0x2B ? 0x20 : lower(s[i]))
            i += 1
        }
    }
    return out
}

func refInRange(_ source: (family: UInt8, bytes: [UInt8], prefix: Int), _ family: UInt8, _ address: [UInt8]) -> Bool {
    guard source.family == family else { return false }
    for bit in 0..<source.prefix {
        let mask = UInt8(0x80) >> UInt8(bit % 8)
        if source.bytes[bit / 8] & mask != address[bit / 8] & mask { return false }
    }
    return true
}

struct RefRequest {
    var method: [UInt8], host: [UInt8], path: [UInt8], query: [UInt8]
    var headers: [([UInt8], [UInt8])]
    var family: UInt8
    var address: [UInt8]  // 16 bytes; IPv4 in the first 4
}

func refRuleMatches(_ rule: RuleTable.Rule, _ q: RefRequest) -> Bool {
    var family = q.family
    var address = q.address
    if family == 6, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
        family = 4
        address = Array(address[12..<16]) + [UInt8](repeating: 0, count: 12)
    }
    if !rule.methods.isEmpty, !rule.methods.contains(where: { refMatch($0, q.method, fold: false) }) { return false }
    if !rule.sources.isEmpty, !rule.sources.contains(where: { refInRange($0, family, address) }) { return false }
    if !rule.hosts.isEmpty, !rule.hosts.contains(where: { refMatch($0, q.host, fold: true) }) { return false }
    if !rule.paths.isEmpty, !rule.paths.contains(where: { refMatch($0, q.path, fold: false) }) { return false }
    for (name, values) in rule.headers {
        let n = Array(name.utf8).map(lower)
        let hit = q.headers.contains { h in
            guard h.0.map(lower) == n else { return false }
            var v = h.1[...]
            while let f = v.first, f == 0x20 || f == 0x09 { v = v.dropFirst() }
            while let l = v.last, l == 0x20 || l == 0x09 { v = v.dropLast() }
            return values.contains { refMatch($0, Array(v), fold: true) }
        }
        if !hit { return false }
    }
    for (key, values) in rule.queries {
        let k = Array(key.utf8).map(lower)
        let pairs = q.query.split(separator: 0x26, omittingEmptySubsequences: true)
        let hit = pairs.contains { pair in
            let eq = pair.firstIndex(of: 0x3D) ?? pair.endIndex
            guard refDecode(Array(pair[pair.startIndex..<eq])) == k else { return false }
            let value = eq == pair.endIndex ? [] : refDecode(Array(pair[(eq + 1)...]))
            return values.contains { refGlob(Array($0.utf8).map(lower), value) }
        }
        if !hit { return false }
    }
    return true
}

// MARK: entry

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var r = Bytes(UnsafeRawBufferPointer(start: data, count: size))
    var rules: [RuleTable.Rule] = []
    for action in 0..<r.int(5) {
        var rule = RuleTable.Rule(action: action)
        let shape = r.byte()
        for _ in 0..<Int(shape & 3) { rule.hosts.append(patternText(&r)) }
        for _ in 0..<Int(shape >> 2 & 1) { rule.paths.append(patternText(&r)) }
        for _ in 0..<Int(shape >> 3 & 1) { rule.methods.append(patternText(&r)) }
        for _ in 0..<Int(shape >> 4 & 1) { rule.headers.append((patternText(&r), [patternText(&r), patternText(&r)])) }
        for _ in 0..<Int(shape >> 5 & 1) { rule.queries.append((patternText(&r), [patternText(&r)])) }
        for _ in 0..<Int(shape >> 6 & 3) {
            let v6 = r.byte() & 1 == 1
            var bytes = [UInt8](repeating: 0, count: v6 ? 16 : 4)
            // Few distinct bytes, so addresses land inside ranges often.
            for i in 0..<bytes.count { bytes[i] = [0, 10, 0xFF, 1][r.int(4)] }
            rule.sources.append((family: v6 ? 6 : 4, bytes: bytes, prefix: r.int(bytes.count * 8 + 1)))
        }
        rules.append(rule)
    }
    let table = RuleTable(rules: rules, defaultAction: -1)
    precondition(table.count == rules.count)

    // Several requests per table.
    while !r.isAtEnd {
        var q = RefRequest(method: text(&r, requestPieces), host: text(&r, requestPieces),
                           path: text(&r, requestPieces), query: [], headers: [], family: 4,
                           address: [UInt8](repeating: 0, count: 16))
        for _ in 0..<r.int(4) {
            q.query += text(&r, requestPieces)
            q.query += [[0x26], [0x3D], Array("a=".utf8), []][r.int(4)]
        }
        for _ in 0..<r.int(3) { q.headers.append((text(&r, patternPieces), text(&r, requestPieces))) }
        switch r.int(3) {
        case 0:
            q.family = 4
            for i in 0..<4 { q.address[i] = [0, 10, 0xFF, 1][r.int(4)] }
        case 1:
            q.family = 6
            for i in 0..<16 { q.address[i] = [0, 10, 0xFF, 1][r.int(4)] }
        default:  // ::ffff:a.b.c.d
            q.family = 6
            q.address[10] = 0xFF
            q.address[11] = 0xFF
            for i in 12..<16 { q.address[i] = [0, 10, 0xFF, 1][r.int(4)] }
        }
        let expected = rules.first { refRuleMatches($0, q) }?.action ?? -1

        let headerBytes = q.headers.map { ($0.0, $0.1) }
        let got = q.method.withUnsafeBytes { method in
            q.host.withUnsafeBytes { host in
                q.path.withUnsafeBytes { path in
                    q.query.withUnsafeBytes { query in
                        withHeaders(headerBytes) { headers in
                            var w = (UInt64(0), UInt64(0))
                            for i in 0..<8 { w.0 = w.0 << 8 | UInt64(q.address[i]) }
                            for i in 8..<16 { w.1 = w.1 << 8 | UInt64(q.address[i]) }
                            return table.match(RequestFacts(
                                method: method, host: host, path: path, query: query, headers: headers,
                                sourceFamily: q.family, sourceAddress: w))
                        }
                    }
                }
            }
        }
        if got != expected {
            report("rules: \(rules)")
            report("request: method=\(q.method) host=\(q.host) path=\(q.path) query=\(q.query) headers=\(q.headers) family=\(q.family) address=\(q.address)")
            report("table says \(got), reference says \(expected)")
            preconditionFailure("RuleTable.match differs from the reference")
        }
    }
    return 0
}

/// Calls `body` with the headers as the (name, value) buffer pairs RequestFacts wants.
func withHeaders<R>(
    _ headers: [([UInt8], [UInt8])],
    _ body: (UnsafeBufferPointer<(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)>) -> R
) -> R {
    // Copy every name and value into one stable allocation, then point into it.
    let total = headers.reduce(0) { $0 + $1.0.count + $1.1.count }
    let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, total), alignment: 1)
    defer { storage.deallocate() }
    var pairs: [(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)] = []
    var at = 0
    for (n, v) in headers {
        for (i, b) in n.enumerated() { storage[at + i] = b }
        let name = UnsafeRawBufferPointer(rebasing: storage[at..<at + n.count])
        at += n.count
        for (i, b) in v.enumerated() { storage[at + i] = b }
        let value = UnsafeRawBufferPointer(rebasing: storage[at..<at + v.count])
        at += v.count
        pairs.append((name: name, value: value))
    }
    return pairs.withUnsafeBufferPointer(body)
}
