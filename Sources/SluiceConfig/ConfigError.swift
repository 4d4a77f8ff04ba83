/// One problem in a config file: where it is (file, 1-based line and column, key path) and what
/// was wrong and expected.
///
/// Problems that have no position (an unreadable file) use line 0, column 0 and an empty path.
/// `description` is `FILE:LINE:COLUMN: PATH: MESSAGE`; the `PATH: ` part is left out when the
/// path is empty.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// File name as given to the loader.
    public var file: String
    /// 1-based line, 0 when the problem has no position.
    public var line: Int
    /// 1-based column in Unicode scalars (as libyaml counts), 0 when the problem has no position.
    public var column: Int
    /// Key path such as `listeners[1].default.forward` or `target_groups[0].targets[2].weight`.
    public var path: String
    /// What was wrong and what was expected.
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty
            ? "\(file):\(line):\(column): \(message)"
            : "\(file):\(line):\(column): \(path): \(message)"
    }
}

/// Every problem found in one config file, in file order (line, then column). Never empty when
/// thrown by `ConfigLoader`; a config with any error is never applied.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors
    }

    /// One error per line, each as `ConfigError.description`.
    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
