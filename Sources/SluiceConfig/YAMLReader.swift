internal import Yams

/// A node of the parsed document with its key path (`listeners[1].default.forward`).
struct YAMLValue {
    let node: Node
    let path: String

    var position: Position { node.position }

    func path(key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    func path(index: Int) -> String { "\(path)[\(index)]" }
}

/// The entries of one YAML mapping that passed the key check, by key.
struct YAMLMapping {
    /// The mapping node itself: where "missing key" errors point.
    let value: YAMLValue
    fileprivate(set) var values: [String: YAMLValue] = [:]
    fileprivate(set) var keys: [String: YAMLValue] = [:]

    subscript(key: String) -> YAMLValue? { values[key] }
    /// The key node of `key` (for errors about the key itself), if present.
    func keyNode(_ key: String) -> YAMLValue? { keys[key] }
}

/// How a scalar reads under the YAML 1.2 core schema (plus `_` digit separators in integers).
/// Quoted scalars are always strings; explicit tags win.
enum ScalarKind: Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case float, string
}

/// Walks the parsed document on behalf of `ConfigLoader`: checks node shapes and keys, turns
/// scalars into typed values and collects one `ConfigError` per problem, so a single pass
/// reports everything. Every accessor returns `nil` after recording an error.
struct YAMLReader {
    let file: String
    let renamedKeys: [Position: String]
    private(set) var errors: [ConfigError] = []

    init(file: String, renamedKeys: [Position: String]) {
        self.file = file
        self.renamedKeys = renamedKeys
    }

    // MARK: Errors

    mutating func error(_ message: String, path: String, at position: Position) {
        errors.append(
            ConfigError(
                file: file, line: position.line, column: position.column, path: path,
                message: message))
    }

    mutating func error(_ message: String, at value: YAMLValue) {
        error(message, path: value.path, at: value.position)
    }

    /// The config error for a known key whose feature is not implemented yet.
    mutating func notSupportedYet(
        _ value: YAMLValue, key: String, shown: String? = nil, reason: String,
        supported: String? = nil
    ) {
        let what = shown.map { "\"\(key): \($0)\"" } ?? "\"\(key)\""
        var message = "\(what) is not supported yet (\(reason))"
        if let supported { message += "; supported now: \(supported)" }
        error(message, at: value)
    }

    // MARK: Shapes

    /// The mapping at `value`, keeping `supported` and `later` keys and reporting any other key
    /// as unknown (listing `supported`). Later keys are returned for the caller to judge.
    mutating func mapping(
        _ value: YAMLValue, supported: [String], later: [String] = [],
        expected: String = "a mapping"
    ) -> YAMLMapping? {
        guard case .mapping(let mapping) = value.node else {
            error("expected \(expected), got \(describe(value.node))", at: value)
            return nil
        }
        var result = YAMLMapping(value: value)
        for (keyNode, valueNode) in mapping {
            guard renamedKeys[keyNode.position] == nil else { continue }  // repeat, reported elsewhere
            guard let key = keyNode.scalar?.string else {
                error("expected a plain key, got \(describe(keyNode))", path: value.path, at: keyNode.position)
                continue
            }
            let keyValue = YAMLValue(node: keyNode, path: value.path(key: key))
            guard supported.contains(key) || later.contains(key) else {
                var message = "unknown key \"\(key)\""
                if let guess = closest(to: key, among: supported + later) { message += " (did you mean \"\(guess)\"?)" }
                message += "; allowed keys: \(supported.joined(separator: ", "))"
                error(message, at: keyValue)
                continue
            }
            result.values[key] = YAMLValue(node: valueNode, path: keyValue.path)
            result.keys[key] = keyValue
        }
        return result
    }

    /// The entries of a mapping whose keys are data (header names, query keys), in file
    /// order, each with its key node; `nil` after an error.
    mutating func entries(_ value: YAMLValue, expected: String) -> [(key: String, keyValue: YAMLValue, value: YAMLValue)]? {
        guard case .mapping(let mapping) = value.node else {
            error("expected \(expected), got \(describe(value.node))", at: value)
            return nil
        }
        var result: [(key: String, keyValue: YAMLValue, value: YAMLValue)] = []
        for (keyNode, valueNode) in mapping {
            guard renamedKeys[keyNode.position] == nil else { continue }  // repeat, reported elsewhere
            guard let key = keyNode.scalar?.string, kind(keyNode) != .null else {
                error("expected a plain key, got \(describe(keyNode))", path: value.path, at: keyNode.position)
                continue
            }
            let keyValue = YAMLValue(node: keyNode, path: value.path(key: key))
            result.append((key, keyValue, YAMLValue(node: valueNode, path: keyValue.path)))
        }
        return result
    }

    /// The value of required `key`, or an error at the mapping if it is missing.
    mutating func required(_ key: String, in mapping: YAMLMapping, expected: String) -> YAMLValue? {
        if let value = mapping[key] { return value }
        error(
            "missing required key \"\(key)\" (\(expected))", path: mapping.value.path(key: key),
            at: mapping.value.position)
        return nil
    }

    /// The elements of the list at `value`; an explicit null reads as an empty list when
    /// `nullIsEmpty`.
    mutating func sequence(_ value: YAMLValue, expected: String, nullIsEmpty: Bool = false) -> [YAMLValue]? {
        switch value.node {
        case .sequence(let sequence):
            return sequence.enumerated().map { YAMLValue(node: $1, path: value.path(index: $0)) }
        case .scalar where nullIsEmpty && kind(value.node) == .null:
            return []
        default:
            error("expected \(expected), got \(describe(value.node))", at: value)
            return nil
        }
    }

    // MARK: Scalars

    /// Any non-null scalar's text.
    mutating func string(_ value: YAMLValue, expected: String = "a string") -> String? {
        guard let scalar = value.node.scalar, kind(value.node) != .null else {
            error("expected \(expected), got \(describe(value.node))", at: value)
            return nil
        }
        return scalar.string
    }

    /// A name for listeners, groups and zones: letters, digits, `_`, `.` and `-`.
    mutating func name(_ value: YAMLValue) -> String? {
        let expected = "a name of letters, digits, _ . and -"
        guard let text = string(value, expected: expected) else { return nil }
        let valid =
            !text.isEmpty
            && text.unicodeScalars.allSatisfy {
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0))
            }
        guard valid else {
            error("expected \(expected), got \(quoted(text))", at: value)
            return nil
        }
        return text
    }

    /// A YAML integer (not quoted, not a float or bool) in `range`.
    mutating func int(_ value: YAMLValue, in range: ClosedRange<Int>, expected: String) -> Int? {
        guard case .int(let number) = kind(value.node) else {
            error("expected \(expected), got \(describe(value.node))", at: value)
            return nil
        }
        guard range.contains(number) else {
            error("expected \(expected), got \(number)", at: value)
            return nil
        }
        return number
    }

    /// A YAML boolean: `true` or `false`.
    mutating func bool(_ value: YAMLValue) -> Bool? {
        guard case .bool(let flag) = kind(value.node) else {
            error("expected true or false, got \(describe(value.node))", at: value)
            return nil
        }
        return flag
    }

    /// Longest duration any key accepts (a year): deadlines are `now + duration` in
    /// nanoseconds, so this keeps them far from overflow; keys with tighter ranges check those.
    static let maxDuration: UInt64 = 365 * 24 * 3_600 * 1_000_000_000

    /// A duration such as `250ms` or `5s`, in nanoseconds, at most `maxDuration`.
    mutating func duration(_ value: YAMLValue) -> UInt64? {
        let expected = "a duration like 250ms, 5s, 2m or 1h"
        guard let scalar = value.node.scalar, kind(value.node) != .null else {
            error("expected \(expected), got \(describe(value.node))", at: value)
            return nil
        }
        guard let nanos = DurationParser.parse(scalar.string) else {
            var message = "expected \(expected), got \(quoted(scalar.string))"
            if case .int = kind(value.node) { message += " (a unit is required)" }
            error(message, at: value)
            return nil
        }
        guard nanos <= YAMLReader.maxDuration else {
            error("expected a duration of at most 365 days (8760h), got \(quoted(scalar.string))", at: value)
            return nil
        }
        return nanos
    }

    /// An address such as `127.0.0.1:80` or `[::1]:80`, resolved.
    mutating func address(_ value: YAMLValue) -> SocketAddressSpec? {
        let expected = "an address like 127.0.0.1:80 or [::1]:80"
        guard let text = string(value, expected: expected) else { return nil }
        switch AddressParser.parseDetailed(text) {
        case .success(let address):
            return address
        case .failure(let problem):
            error("expected \(expected), got \(quoted(text)): \(problem.message)", at: value)
            return nil
        }
    }

    // MARK: Helpers

    func kind(_ node: Node) -> ScalarKind {
        guard let scalar = node.scalar else { return .string }
        let text = scalar.string
        // Explicit tags (`!!str 5`) win. Yams may also have resolved an implicit tag in place.
        switch scalar.tag.rawValue {
        case Tag.Name.str.rawValue: return .string
        case Tag.Name.null.rawValue: return .null
        case Tag.Name.bool.rawValue: return Self.boolValue(text).map(ScalarKind.bool) ?? .string
        case Tag.Name.int.rawValue: return Self.intValue(text).map(ScalarKind.int) ?? .string
        case Tag.Name.float.rawValue: return .float
        case Tag.Name.implicit.rawValue: break
        default: return .string
        }
        guard scalar.style == .plain else { return .string }
        if ["", "~", "null", "Null", "NULL"].contains(text) { return .null }
        if let flag = Self.boolValue(text) { return .bool(flag) }
        if let number = Self.intValue(text) { return .int(number) }
        if Self.isFloat(text) { return .float }
        return .string
    }

    private static func boolValue(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE": true
        case "false", "False", "FALSE": false
        default: nil
        }
    }

    private static func intValue(_ text: String) -> Int? {
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard let first = digits.first, first.isASCII, first.isNumber,
            digits.allSatisfy({ $0 == "_" || ($0.isASCII && $0.isNumber) })
        else { return nil }
        return Int(text.filter { $0 != "_" })
    }

    private static func isFloat(_ text: String) -> Bool {
        if [".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN"].contains(text) { return true }
        return Double(text) != nil && text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
    }

    /// How a node reads in "got ..." messages.
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch kind(node) {
            case .null: return "nothing"
            case .string: return scalar.style == .plain ? quoted(scalar.string) : "the string \(quoted(scalar.string))"
            default: return scalar.string
            }
        }
    }

    func quoted(_ text: String) -> String {
        "\"" + text.unicodeScalars.map { $0.escaped(asASCII: false) }.joined() + "\""
    }

    /// The candidate within edit distance 2 of `key` (1 for short keys), if any.
    private func closest(to key: String, among candidates: [String]) -> String? {
        let limit = key.count <= 4 ? 1 : 2
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(Array(key), Array(candidate))
            if distance <= limit, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        return best?.name
    }

    /// Edit distance counting a swap of neighbours (`bnid` for `bind`) as one edit.
    private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return Swift.max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
