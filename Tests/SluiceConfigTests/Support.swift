import Foundation
import Testing
import SluiceConfig

/// File name used in every parsed test document.
let testFile = "test.yaml"

/// Parses `yaml` and returns its errors (empty if it loaded).
func loadErrors(_ yaml: String) -> [ConfigError] {
    do {
        _ = try ConfigLoader.parse(yaml: yaml, file: testFile)
        return []
    } catch {
        return error.errors
    }
}

/// The errors as `LINE:COLUMN PATH` strings, for compact position checks.
func positions(_ yaml: String) -> [String] {
    loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path)" }
}

/// A minimal valid document: one tcp listener forwarding to one tcp group.
let minimalYAML = """
    listeners:
      - name: pg
        protocol: tcp
        bind: 127.0.0.1:5432
        default: { forward: db }
    target_groups:
      - name: db
        protocol: tcp
        targets:
          - { address: 127.0.0.1:9001 }
    """

/// Errors from `ConfigLoader.load(path:)` (empty if it loaded).
func loadErrors(path: String) -> [ConfigError] {
    do {
        _ = try ConfigLoader.load(path: path)
        return []
    } catch {
        return error.errors
    }
}

/// Writes `text` to a new file in the temporary directory and returns its path.
func writeTemporaryFile(_ text: String) throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("sluice-config-test-\(UUID().uuidString).yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// A valid document whose only listener gets `extra` (lines indented by 4) from line 6,
/// column 5 on.
func listenerDocument(_ extra: String) -> String {
    """
    listeners:
      - name: pg
        protocol: tcp
        bind: 127.0.0.1:5432
        default: { forward: db }
    \(indent(extra))
    target_groups:
      - { name: db, protocol: tcp, targets: [] }
    """
}

/// A valid document whose only group gets `extra` (lines indented by 4) from line 6, column 5 on.
func groupDocument(_ extra: String) -> String {
    """
    listeners:
      - { name: pg, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
    target_groups:
      - name: db
        protocol: tcp
    \(indent(extra))
    """
}

private func indent(_ lines: String) -> String {
    lines.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
}

/// A valid document whose only listener is http (forwarding to http group `app`) and gets
/// `extra` (lines indented by 4) from line 6, column 5 on. Groups: `app` and `v2` (http), `db`
/// (tcp).
func httpListenerDocument(_ extra: String) -> String {
    """
    listeners:
      - name: web
        protocol: http
        bind: 127.0.0.1:8080
        default: { forward: app }
    \(indent(extra))
    target_groups:
      - { name: app, protocol: http }
      - { name: v2, protocol: http }
      - { name: db, protocol: tcp }
    """
}

/// A valid document with one http listener whose `rules:` list is `rules` (lines indented by 6),
/// starting at line 7, column 7.
func rulesDocument(_ rules: String) -> String {
    httpListenerDocument(
        "rules:\n" + rules.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
            .joined(separator: "\n"))
}

/// A valid document whose only group is http and gets `extra` (lines indented by 4) from line 6,
/// column 5 on.
func httpGroupDocument(_ extra: String) -> String {
    """
    listeners:
      - { name: web, protocol: http, bind: 127.0.0.1:8080, default: { forward: app } }
    target_groups:
      - name: app
        protocol: http
    \(indent(extra))
    """
}

/// The loaded config, or `nil` (with the errors recorded as a test issue) if it did not load.
func load(_ yaml: String) -> Config? {
    do {
        return try ConfigLoader.parse(yaml: yaml, file: testFile)
    } catch {
        Issue.record("expected the config to load, got:\n\(error)")
        return nil
    }
}

/// A new directory in the temporary directory holding an empty file for each of `names`
/// (subdirectories made as needed): the loader checks only that certificate, key and CA files
/// are readable, not what is in them. Returns its path; the caller removes it.
func temporaryDirectory(files names: [String]) throws -> String {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-config-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    for name in names {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data().write(to: url)
    }
    return root.path
}
