internal import Yams

/// A 1-based line and column in the config file, as libyaml counts them (columns in Unicode
/// scalars).
struct Position: Hashable, Comparable {
    var line: Int
    var column: Int

    static let none = Position(line: 0, column: 0)

    static func < (a: Position, b: Position) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

extension Node {
    /// Where this node starts; `.none` if Yams gave no mark.
    var position: Position {
        mark.map { Position(line: $0.line, column: $0.column) } ?? .none
    }
}

/// The parsed root node of one config file.
///
/// Yams stops at the first mapping with a repeated key. To go on and report every other
/// problem as well, the first occurrence of such a key is renamed in the text to a placeholder
/// of the same width (so no other position moves) and the text is parsed again. `renamedKeys`
/// remembers where those placeholders are and which key they stood for: `structuralErrors`
/// reports each at the key's next occurrence, and `YAMLReader` skips them.
struct YAMLDocument {
    /// `nil` for a file with no document (empty or only comments).
    var root: Node?
    var renamedKeys: [Position: String] = [:]

    /// At most this many repeated keys are recovered from; beyond it the parse error stands.
    static let maxRenamedKeys = 64
    /// A document whose aliases expand past this many nodes is refused (billion laughs).
    static let maxNodes = 200_000

    /// Placeholder characters: one Unicode scalar each, allowed in plain YAML scalars and
    /// never part of a Sluice key, so a placeholder cannot clash with a real key.
    private static let placeholderAlphabet: [Unicode.Scalar] = Array("§¶¤©®°±¹²³¼½¾×÷¬".unicodeScalars)

    /// Parses `text`, or returns the one error that stopped it (bad syntax, several documents,
    /// a repeated key that could not be recovered from).
    static func parse(_ text: String, file: String) -> Result<YAMLDocument, ConfigError> {
        var document = YAMLDocument()
        // libyaml reads a leading byte order mark but then fails on the text after it; it is
        // not part of any line's columns, so dropping it moves no position.
        var current = text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
        while true {
            do {
                document.root = try Yams.compose(yaml: current)
                return .success(document)
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                // Yams reports the first occurrence of the first duplicated key (in sort order).
                let position = Position(line: context.mark.line, column: context.mark.column)
                guard let key = duplicates.first,
                    document.renamedKeys.count < maxRenamedKeys,
                    document.renamedKeys[position] == nil,
                    let renamed = rename(
                        key: key, at: position, in: current,
                        serial: document.renamedKeys.count)
                else {
                    // Yams names a non-scalar key "<uncovertable>".
                    let key = duplicates.first.flatMap { $0 == "<uncovertable>" ? nil : " \"\($0)\"" } ?? ""
                    return .failure(
                        ConfigError(
                            file: file, line: position.line, column: position.column, path: "",
                            message: "duplicate key\(key): a key may appear only once in a mapping"))
                }
                document.renamedKeys[position] = key
                current = renamed
            } catch {
                return .failure(syntaxError(error, text: current, file: file))
            }
        }
    }

    /// `text` with the key written at `position` replaced by a placeholder of the same width,
    /// or `nil` if the key is not written there in a form we can replace (plain, or quoted
    /// without escapes).
    private static func rename(key: String, at position: Position, in text: String, serial: Int) -> String? {
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map(Array.init)
        let row = position.line - 1
        let start = position.column - 1
        guard row >= 0, row < lines.count, start >= 0, start <= lines[row].count, !key.isEmpty else { return nil }
        let keyScalars = Array(key.unicodeScalars)
        let line = lines[row]
        let rest = line[start...]
        let width: Int
        if rest.starts(with: keyScalars) {
            width = keyScalars.count
        } else if let quote = rest.first, quote == "\"" || quote == "'",
            rest.dropFirst().starts(with: keyScalars + [quote])
        {
            width = keyScalars.count + 2
        } else {
            return nil
        }
        // Spell `serial` in base 16 over the placeholder so successive placeholders differ.
        var placeholder: [Unicode.Scalar] = []
        var n = serial
        for _ in 0..<width {
            placeholder.append(placeholderAlphabet[n % placeholderAlphabet.count])
            n /= placeholderAlphabet.count
        }
        lines[row].replaceSubrange(start..<start + width, with: placeholder)
        var result = String.UnicodeScalarView()
        for (index, line) in lines.enumerated() {
            if index > 0 { result.append("\n") }
            result.append(contentsOf: line)
        }
        return String(result)
    }

    /// A `ConfigError` for a Yams parse failure, at the position libyaml reported.
    private static func syntaxError(_ error: any Error, text: String, file: String) -> ConfigError {
        func located(_ mark: Mark, _ message: String) -> ConfigError {
            var message = message
            if hasUnquotedIPv6(line: mark.line, in: text) || hasUnquotedIPv6(line: mark.line - 1, in: text) {
                message += "; an IPv6 address must be quoted, as in \"[::1]:80\""
            }
            return ConfigError(file: file, line: mark.line, column: mark.column, path: "", message: message)
        }
        func describe(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return "invalid YAML: \(problem)" }
            return
                "invalid YAML: \(problem) (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        guard let yamlError = error as? YamlError else {
            return ConfigError(file: file, line: 0, column: 0, path: "", message: "cannot parse YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return located(mark, describe(problem, context))
        case .composer(let context, let problem, let mark, _):
            if problem == "but found another document" {
                return located(mark, "a config file holds one YAML document; found a second one here")
            }
            return located(mark, describe(problem, context))
        case .reader(let problem, let offset, _, _):
            let position = offset.map { characterPosition(ofOffset: $0, in: text) } ?? .none
            return ConfigError(
                file: file, line: position.line, column: position.column, path: "",
                message: "unreadable text: \(problem)")
        default:
            return ConfigError(file: file, line: 0, column: 0, path: "", message: "cannot parse YAML: \(yamlError)")
        }
    }

    /// Whether 1-based `line` holds a plain `[v6]:PORT`, which YAML reads as a flow list.
    private static func hasUnquotedIPv6(line: Int, in text: String) -> Bool {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count else { return false }
        var rest = lines[line - 1][...]
        while let open = rest.firstIndex(of: "[") {
            let after = rest[rest.index(after: open)...]
            let inside = after.prefix { $0.isHexDigit || $0 == ":" || $0 == "." }
            let tail = after.dropFirst(inside.count)
            if inside.contains(":"), tail.hasPrefix("]:"), tail.dropFirst(2).first?.isNumber == true {
                // Quoted addresses are fine: only flag one not preceded by a quote.
                let before = rest[..<open].last
                if before != "\"" && before != "'" { return true }
            }
            rest = after
        }
        return false
    }

    private static func characterPosition(ofOffset offset: Int, in text: String) -> Position {
        var position = Position(line: 1, column: 1)
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                position = Position(line: position.line + 1, column: 1)
            } else {
                position.column += 1
            }
        }
        return position
    }
}

extension YAMLDocument {
    /// One error per repeated key, at its second occurrence, with the key's path; and an error
    /// if aliases make the document larger than `maxNodes`. Walks the whole tree, so repeats
    /// inside sections the loader does not read (unknown or later keys) are reported too.
    func structuralErrors(file: String) -> [ConfigError] {
        guard let root else { return [] }
        var walker = StructureWalker(file: file, renamedKeys: renamedKeys)
        walker.walk(root, path: "")
        if walker.visited > Self.maxNodes {
            return [
                ConfigError(
                    file: file, line: 1, column: 1, path: "",
                    message: "the document expands to more than \(Self.maxNodes) nodes through aliases")
            ]
        }
        return walker.errors
    }
}

/// Walks every node once per reference, reporting renamed (repeated) keys.
private struct StructureWalker {
    let file: String
    let renamedKeys: [Position: String]
    var errors: [ConfigError] = []
    var reported: Set<Position> = []
    var visited = 0

    /// The key a mapping key node stands for: its text, or the key a placeholder replaced.
    func keyName(_ key: Node) -> String {
        renamedKeys[key.position] ?? key.scalar?.string ?? "?"
    }

    mutating func walk(_ node: Node, path: String) {
        visited += 1
        guard visited <= YAMLDocument.maxNodes else { return }
        switch node {
        case .mapping(let mapping):
            let pairs = Array(mapping)
            for (index, pair) in pairs.enumerated() {
                let name = keyName(pair.key)
                let keyPath = path.isEmpty ? name : "\(path).\(name)"
                let renamed = pair.key.position
                if renamedKeys[renamed] != nil, reported.insert(renamed).inserted {
                    let again = pairs[(index + 1)...].first { keyName($0.key) == name }?.key ?? pair.key
                    let first = (pairs.first { keyName($0.key) == name }?.key ?? pair.key).position
                    let position = again.position
                    errors.append(
                        ConfigError(
                            file: file, line: position.line, column: position.column, path: keyPath,
                            message: "duplicate key \"\(name)\" (first at line \(first.line), column \(first.column));"
                                + " a key may appear only once in a mapping"))
                }
                walk(pair.value, path: keyPath)
            }
        case .sequence(let sequence):
            for (index, element) in sequence.enumerated() {
                walk(element, path: "\(path)[\(index)]")
            }
        case .scalar, .alias:
            return
        }
    }
}
