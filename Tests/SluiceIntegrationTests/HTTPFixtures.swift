import Foundation
import SluiceTestSupport

/// An http listener config. `groups` are http target groups; `listener` lines are added to
/// the listener (rules, timeouts …) and `group` lines to every group.
func httpConfig(port: UInt16, groups: [(name: String, targets: [UInt16])], defaultGroup: String? = nil,
                listener: [String] = [], group: [String] = [], workers: Int = 1) -> String {
    var lines = [
        "node:",
        "  workers: \(workers)",
        "  shutdown_grace: 5s",
        "listeners:",
        "  - name: web",
        "    protocol: http",
        "    bind: \"127.0.0.1:\(port)\"",
        "    access_log: off",
        "    default: { forward: \(defaultGroup ?? groups[0].name) }",
    ]
    lines += listener.map { "    " + $0 }
    lines.append("target_groups:")
    for g in groups {
        lines += ["  - name: \(g.name)", "    protocol: http"]
        lines += group.map { "    " + $0 }
        // Routing tests keep health checks out of the way; health tests ask for them.
        if !group.contains(where: { $0.hasPrefix("health_check") }) { lines.append("    health_check: off") }
        lines.append("    targets:" + (g.targets.isEmpty ? " []" : ""))
        lines += g.targets.map { "      - { address: \"127.0.0.1:\($0)\" }" }
    }
    return lines.joined(separator: "\n") + "\n"
}

/// A GET through the proxy on a fresh connection.
func get(_ port: UInt16, _ path: String, headers: [String] = []) throws -> HTTPClient.Response {
    let extra = headers.map { $0 + "\r\n" }.joined()
    return try HTTPClient.request(port: port, "GET \(path) HTTP/1.1\r\nHost: test.local\r\n\(extra)Connection: close\r\n\r\n")
}

/// Headers the target received, from its JSON answer.
func receivedHeaders(_ r: HTTPClient.Response) -> [String: String] {
    r.json["headers"] as? [String: String] ?? [:]
}
