import Foundation
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
