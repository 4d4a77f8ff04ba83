import Foundation
import SluiceTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Launch and terminate hooks (SPEC §11) in a temporary directory: the launch hook starts a
/// real HTTP target (python3's http.server on a free port, in a session of its own, its pid
/// kept in `pid.ADDRESS`) and prints its address; the terminate hook kills the target named
/// by SLUICE_TARGET. Files in the directory steer them: `fail` makes launches fail, `slow`
/// makes them hang. Each run appends its environment to `launch.log` / `terminate.log`.
final class ScalingHooks: @unchecked Sendable {
    // @unchecked: immutable after init; the files are the shared state.
    let dir: URL
    var launch: String { dir.appendingPathComponent("launch").path }
    var terminate: String { dir.appendingPathComponent("terminate").path }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-hooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = dir.path
        try write("server.py", """
            import http.server, os, sys
            d = sys.argv[1]
            class Handler(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def do_GET(self):
                    body = ("ok %d\\n" % port).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            port = server.server_address[1]
            tmp = os.path.join(d, "ready.%d.tmp" % os.getpid())
            with open(tmp, "w") as f:
                f.write(str(port))
            os.rename(tmp, os.path.join(d, "ready.%d" % os.getpid()))
            server.serve_forever()

            """, executable: false)
        try write("launch", """
            #!/bin/bash
            # Test launch hook: starts an HTTP target and prints its address.
            d="\(d)"
            echo "group=$SLUICE_GROUP zone=$SLUICE_ZONE activity=$SLUICE_ACTIVITY" >> "$d/launch.log"
            if [ -e "$d/fail" ]; then echo "failing on purpose" >&2; exit 3; fi
            if [ -e "$d/slow" ]; then sleep 60; fi
            setsid /usr/bin/python3 "$d/server.py" "$d" </dev/null >/dev/null 2>&1 &
            pid=$!
            for i in $(seq 1 400); do
              if [ -e "$d/ready.$pid" ]; then
                port=$(cat "$d/ready.$pid")
                echo "$pid" > "$d/pid.127.0.0.1:$port"
                echo "127.0.0.1:$port"
                exit 0
              fi
              sleep 0.025
            done
            echo "target did not start" >&2
            exit 1

            """, executable: true)
        try write("terminate", """
            #!/bin/bash
            # Test terminate hook: stops the target named by SLUICE_TARGET.
            d="\(d)"
            echo "group=$SLUICE_GROUP target=$SLUICE_TARGET zone=$SLUICE_ZONE activity=$SLUICE_ACTIVITY" >> "$d/terminate.log"
            f="$d/pid.$SLUICE_TARGET"
            if [ -e "$f" ]; then kill "$(cat "$f")"; rm -f "$f"; fi
            exit 0

            """, executable: true)
    }

    private func write(_ name: String, _ text: String, executable: Bool) throws {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if executable { chmod(path, 0o755) }
    }

    /// Creates or removes a steering file (`fail`, `slow`).
    func set(_ flag: String, _ on: Bool) {
        let path = dir.appendingPathComponent(flag).path
        if on {
            _ = FileManager.default.createFile(atPath: path, contents: Data())
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    func lines(_ log: String) -> [String] {
        let text = (try? String(contentsOfFile: dir.appendingPathComponent(log).path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Pids of the targets still running, by address.
    var running: [String: Int32] {
        var out: [String: Int32] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix("pid.") {
            let text = (try? String(contentsOfFile: dir.appendingPathComponent(name).path, encoding: .utf8)) ?? ""
            if let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) { out[String(name.dropFirst(4))] = pid }
        }
        return out
    }

    /// Kills the target at `address` without telling sluiced (it turns unhealthy).
    func crash(_ address: String) {
        if let pid = running[address] { kill(pid, SIGKILL) }
    }

    /// Stops every target still running and removes the directory.
    func cleanUp() {
        for pid in running.values { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: dir)
    }

    /// An http listener on `port` in front of managed group `app`; `scaling` lines go under
    /// its `scaling:` (indented by the caller's 6 spaces).
    func config(port: UInt16, scaling: [String], group: [String] = []) -> String {
        var lines = [
            "node:",
            "  workers: 1",
            "  shutdown_grace: 2s",
            "listeners:",
            "  - name: web",
            "    protocol: http",
            "    bind: \"127.0.0.1:\(port)\"",
            "    access_log: off",
            "    default: { forward: app }",
            "target_groups:",
            "  - name: app",
            "    protocol: http",
            "    deregistration_delay: 2s",
            "    health_check: { protocol: http, path: /, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 2 }",
        ]
        lines += group.map { "    " + $0 }
        lines += [
            "    scaling:",
            "      launch: \(launch)",
            "      terminate: \(terminate)",
        ]
        lines += scaling.map { "      " + $0 }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `sluicectl scaling app --json` as an object.
func scalingState(_ d: SluicedProcess, _ group: String = "app") throws -> [String: Any] {
    let r = try ctl(d, ["scaling", group, "--json"])
    return (try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]) ?? [:]
}

func activities(_ d: SluicedProcess) throws -> [[String: Any]] {
    try scalingState(d)["activities"] as? [[String: Any]] ?? []
}

/// Addresses of the group's non-draining targets that are healthy.
func healthyTargets(_ d: SluicedProcess) throws -> [String] {
    try targetStates(d, group: "app").filter { $0.value == "healthy" }.map(\.key).sorted()
}

/// Registered, non-draining targets.
func liveTargets(_ d: SluicedProcess) throws -> [String] {
    try targetStates(d, group: "app").filter { $0.value != "draining" }.map(\.key).sorted()
}

/// `curl` through the proxy: the body, or nil on failure.
func curl(_ port: UInt16) -> String? {
    guard let r = try? runTool("/usr/bin/curl", ["-s", "-f", "-m", "5", "http://127.0.0.1:\(port)/"]), r.status == 0 else {
        return nil
    }
    return r.output
}
