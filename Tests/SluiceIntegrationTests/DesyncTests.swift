import Foundation
import SluiceTestSupport
import Testing

/// Request smuggling attempts never produce a second request at a target.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct DesyncTests {
    static let attacks: [(String, String)] = [
        ("CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("TE.TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("TE space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("CL CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("obs-fold TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n\r\n0\r\n\r\n"),
        ("bare LF", "POST / HTTP/1.1\nHost: x\nContent-Length: 4\nTransfer-Encoding: chunked\n\n2c\nGET /smuggled HTTP/1.1\nHost: x\nX: y\n\n\n0\n\n"),
    ]

    @Test(arguments: ["defensive", "strictest"])
    func smugglingNeverReachesATargetAsASecondRequest(mode: String) throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])],
                                                    listener: ["desync_mitigation: \(mode)"]))
        defer { d.terminate() }
        for (name, raw) in DesyncTests.attacks {
            // The attack, then an innocent request on the same connection (to catch a
            // poisoned target connection).
            _ = try HTTPClient.exchange(port: port, raw + "GET /innocent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let victim = try get(port, "/victim")
            #expect(victim.json["path"] as? String == "/victim", "\(name) in \(mode): \(victim.status)")
        }
        let paths = try a.stats().paths
        #expect(!paths.contains { $0.contains("smuggled") }, "a smuggled request reached the target in \(mode): \(paths)")
    }

    /// Monitor mode forwards everything, but framing is normalised: every request a target
    /// sees is one Sluice parsed and logged as its own, never bytes hidden in a body.
    @Test func monitorModeTargetsSeeOnlyWhatSluiceParsed() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var yaml = httpConfig(port: port, groups: [("app", [a.port])], listener: ["desync_mitigation: monitor"])
        yaml = yaml.replacingOccurrences(of: "access_log: off", with: "access_log: \(logPath)")
        let d = try SluicedProcess(yaml: yaml)
        defer { d.terminate() }
        for (_, raw) in DesyncTests.attacks {
            _ = try HTTPClient.exchange(port: port, raw + "GET /innocent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        }
        let seen = try a.stats().paths
        var forwarded: [String] = []
        try waitUntil("the access log lists every forwarded request") {
            let lines = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n")
            forwarded = lines.compactMap { line -> String? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      o["target"] is String, (o["status"] as? Int ?? 0) < 400 else { return nil }
                return "\(o["method"] as? String ?? "") \(o["path"] as? String ?? "")"
            }
            return forwarded.count >= seen.count
        }
        #expect(forwarded.sorted() == seen.sorted())
    }

    @Test func defensiveRejectsSevereAndStrictestRejectsAmbiguous() throws {
        let a = try HTTPBackend(name: "a")
        let port = try TestSocket.freePort()
        let d = try SluicedProcess(yaml: httpConfig(port: port, groups: [("app", [a.port])]))
        defer { d.terminate() }
        let severe = try HTTPClient.request(port: port,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        #expect(severe.status == 400)
        #expect(try a.stats().count == 0)
    }
}
