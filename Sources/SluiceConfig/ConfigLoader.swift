#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Turns a YAML config file (SPEC §2, the subset this release implements) into a validated
/// `Config`.
///
/// Every problem found is reported, each with file, line, column and key path; a config with
/// any problem is never returned. Keys of later releases are refused with a message saying so.
/// Host names in addresses are resolved while loading, so call this off the data path.
public enum ConfigLoader {
    /// Reads and validates `path`. Throws `ConfigErrors` listing every problem found.
    public static func load(path: String) throws(ConfigErrors) -> Config {
        let text: String
        switch readFile(path) {
        case .success(let contents): text = contents
        case .failure(let error): throw ConfigErrors([error])
        }
        return try parse(yaml: text, file: path)
    }

    /// Same from text; `file` is the name used in messages, and relative file paths in the config
    /// (certificates, keys, CA bundles) resolve against its directory.
    public static func parse(yaml: String, file: String) throws(ConfigErrors) -> Config {
        let document: YAMLDocument
        switch YAMLDocument.parse(yaml, file: file) {
        case .success(let parsed): document = parsed
        case .failure(let error): throw ConfigErrors([error])
        }
        let structural = document.structuralErrors(file: file)
        if structural.contains(where: { $0.path.isEmpty }) { throw ConfigErrors(structural) }
        guard let root = document.root else {
            throw ConfigErrors([
                ConfigError(
                    file: file, line: 1, column: 1, path: "",
                    message: "the file is empty; expected a mapping with at least \"listeners\"")
            ])
        }
        var builder = ConfigBuilder(
            reader: YAMLReader(file: file, renamedKeys: document.renamedKeys),
            configDirectory: ConfigFiles.directory(of: file))
        let config = builder.config(YAMLValue(node: root, path: ""))
        let errors = structural + builder.reader.errors
        guard errors.isEmpty, let config else {
            // Stable sort: errors at one position keep the order they were found in.
            let ordered = errors.enumerated().sorted {
                (Position(line: $0.element.line, column: $0.element.column), $0.offset)
                    < (Position(line: $1.element.line, column: $1.element.column), $1.offset)
            }
            throw ConfigErrors(ordered.map(\.element))
        }
        return config
    }

    /// The file's text, or a position-less error carrying the OS error.
    /// Largest config file read: keeps every offset into rule text far below `Int32.max`
    /// (the compiled rules store 32-bit offsets).
    public static let maxFileBytes = 16 * 1024 * 1024

    private static func readFile(_ path: String) -> Result<String, ConfigError> {
        func failure(_ what: String) -> Result<String, ConfigError> {
            .failure(
                ConfigError(
                    file: path, line: 0, column: 0, path: "",
                    message: "cannot read the config file: \(what)"))
        }
        func osError() -> String { "\(String(cString: strerror(errno))) (errno \(errno))" }

        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { return failure(osError()) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return failure(osError())
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > ConfigLoader.maxFileBytes {
                return failure("larger than \(ConfigLoader.maxFileBytes / (1024 * 1024)) MiB")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return failure("the file is not UTF-8 text") }
        return .success(text)
    }
}
