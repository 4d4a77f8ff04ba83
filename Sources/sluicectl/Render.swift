// Guarded so Fuzz/CtlResponseFuzz can compile this file in one module with the API types.
#if canImport(SluiceControl)
    import SluiceControl
#endif

/// Human output of each command, as pure functions of the API types (tested without a daemon).
enum Render {
    static let none = "-"

    static func status(_ s: StatusInfo) -> String {
        let rows: [(String, String)] = [
            ("version", s.version),
            ("uptime", uptime(s.uptimeSeconds)),
            ("zone", s.zone ?? none),
            ("workers", String(s.workers)),
            ("config", s.configFile),
            ("config hash", s.configHash),
            ("plan generation", String(s.planGeneration)),
            ("connections", "\(s.connectionsActive) active, \(s.connectionsTotal) total"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0 + ":" + String(repeating: " ", count: width - $0.0.count + 2) + $0.1 }
            .joined(separator: "\n") + "\n"
    }

    /// `3d 4h 5m 6s`, leading zero units left out. The value comes from the daemon's JSON: negative
    /// or NaN counts as 0, and anything past `Int.max` seconds shows as `Int.max` (`Int(_:)` of such a
    /// `Double` would trap).
    static func uptime(_ seconds: Double) -> String {
        var rest = 0
        if seconds >= 1 {
            // 2^63 is exactly representable; every Double below it converts to Int without trapping.
            rest = seconds < 0x1p63 ? Int(seconds) : Int.max
        }
        let days = rest / 86_400
        rest %= 86_400
        let hours = rest / 3_600
        rest %= 3_600
        let minutes = rest / 60
        let secs = rest % 60
        var parts: [String] = []
        if days > 0 { parts.append("\(days)d") }
        if days > 0 || hours > 0 { parts.append("\(hours)h") }
        if days > 0 || hours > 0 || minutes > 0 { parts.append("\(minutes)m") }
        parts.append("\(secs)s")
        return parts.joined(separator: " ")
    }

    /// `targets list`: one row per target (`GROUP TARGET ZONE WEIGHT STATE REASON IN-FLIGHT`), a row
    /// with `(none)` for a group without targets, then a note for each group failing open.
    static func targets(_ groups: [GroupInfo]) -> String {
        var table = Table([
            ("GROUP", .left), ("TARGET", .left), ("ZONE", .left), ("WEIGHT", .right), ("STATE", .left),
            ("REASON", .left), ("IN-FLIGHT", .right),
        ])
        for group in groups {
            if group.targets.isEmpty {
                table.append([group.name, "(none)", none, none, none, none, none])
            }
            for target in group.targets {
                table.append([
                    group.name, target.address + (target.isStatic ? " (static)" : ""), target.zone ?? none,
                    String(target.weight), target.state, target.reason ?? none, String(target.inFlight),
                ])
            }
        }
        var out = table.render()
        for group in groups where group.failOpen {
            out += "note: \(group.name) is failing open: no target is healthy, so traffic goes to all of them\n"
        }
        return out
    }

    /// `nodes`: one row per live node of the fleet (`NAME ZONE VERSION PLAN STARTED`).
    static func nodes(_ info: NodesInfo) -> String {
        var table = Table([("NAME", .left), ("ZONE", .left), ("VERSION", .left), ("PLAN", .right), ("STARTED", .left)])
        for n in info.nodes {
            table.append([n.name, n.zone, n.version, String(n.planGeneration), n.started])
        }
        return table.render()
    }

    /// One event as a line: time, type, group, target, state, reason, then the message if any.
    /// Fields have minimum widths so a stream of events lines up.
    static func event(_ e: ControlEvent) -> String {
        let fields: [(String, Int)] = [
            (e.time, 24), (e.type, 15), (e.group ?? none, 12), (e.target ?? none, 21), (e.state ?? none, 9),
            (e.reason ?? none, 0),
        ]
        var line = ""
        for (i, (text, width)) in fields.enumerated() {
            if i > 0 { line += "  " }
            line += text + String(repeating: " ", count: max(0, width - text.count))
        }
        if let message = e.message, !message.isEmpty { line += "  " + message.replacingNewlines() }
        while line.last == " " { line.removeLast() }
        return line
    }

    static func reload(_ r: ReloadResult) -> (stdout: String, stderr: String) {
        if r.ok { return ("reloaded: plan generation \(r.generation)\n", "") }
        var err = "error: reload refused; the running configuration (plan generation \(r.generation)) is unchanged\n"
        for e in r.errors { err += "  " + e + "\n" }
        return ("", err)
    }

    static func target(_ t: TargetInfo, group: String) -> String {
        "\(t.address) in \(group): zone \(t.zone ?? none), weight \(t.weight), \(t.state)"
            + (t.reason.map { " (\($0))" } ?? "")
    }
}

extension String {
    /// The text with CR and LF as spaces, for one-line messages.
    func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" || $0 == "\r\n" ? " " : $0 })
    }
}
