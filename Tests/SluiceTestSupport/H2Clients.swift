import Foundation

/// Runs a command-line client under coreutils `timeout`, so a daemon that stalls a stream
/// fails the test after `seconds` instead of hanging it; exit status 124 means timed out.
public func runBounded(_ seconds: Int, _ tool: String, _ args: [String]) throws -> (status: Int32, output: String) {
    try runTool("timeout", ["-k", "2", String(seconds), tool] + args)
}

/// `Tests/Fixtures/h2_hostile.py` (a hand-written hostile HTTP/2 client): runs MODE with N
/// against 127.0.0.1:`port` and returns its JSON report (see the script's doc).
public enum H2Hostile {
    public static func run(port: UInt16, mode: String, _ n: Int, tls: Bool = false, wait: Double = 3,
                           extra: [String] = []) throws -> [String: Any] {
        let script = fixturesDirectory.appendingPathComponent("h2_hostile.py").path
        var args = [script, "--port", String(port), "--wait", String(wait)]
        if tls { args.append("--tls") }
        args += extra + [mode, String(n)]
        let r = try runBounded(60, "python3", args)
        let line = r.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw TestSocket.Failure("h2_hostile.py \(mode) \(n): no JSON report (status \(r.status)): \(r.output)")
        }
        return obj
    }
}

/// Splits text holding JSON objects written back to back (nghttp prints the bodies of all
/// its streams without separators) into the objects; other text between them is skipped.
public func concatenatedJSONObjects(_ text: String) -> [[String: Any]] {
    let bytes = Array(text.utf8)
    var out: [[String: Any]] = []
    var depth = 0
    var start = -1
    var inString = false
    var escaped = false
    for (i, b) in bytes.enumerated() {
        if inString {
            if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch b {
        case UInt8(ascii: "\""): if depth > 0 { inString = true }
        case UInt8(ascii: "{"):
            if depth == 0 { start = i }
            depth += 1
        case UInt8(ascii: "}"):
            guard depth > 0 else { continue }
            depth -= 1
            if depth == 0, start >= 0,
               let obj = (try? JSONSerialization.jsonObject(with: Data(bytes[start...i]))) as? [String: Any] {
                out.append(obj)
            }
        default: break
        }
    }
    return out
}
