import Foundation
import SluiceControl
import Testing

@testable import sluicectl

@Suite struct RenderTests {
    @Test func tableAlignsColumns() {
        var table = Table([("NAME", .left), ("N", .right), ("NOTE", .left)])
        table.append(["a", "1", "-"])
        table.append(["longer", "100", ""])
        #expect(table.render() == """
            NAME      N  NOTE
            a         1  -
            longer  100

            """)
    }

    @Test func targetsTable() {
        let groups = [
            GroupInfo(
                name: "web", proto: "http", algorithm: "round_robin", crossZone: "true", failOpen: false,
                targets: [
                    TargetInfo(address: "10.0.0.5:8080", zone: "zone-a", weight: 1, state: "healthy", inFlight: 3),
                    TargetInfo(
                        address: "[2001:db8::7]:8080", zone: "zone-b", weight: 10, state: "unhealthy",
                        reason: "connect_refused", inFlight: 0, isStatic: true),
                ]),
            GroupInfo(name: "db", proto: "tcp", algorithm: "least_conn", crossZone: "false", failOpen: true, targets: []),
        ]
        #expect(Render.targets(groups) == """
            GROUP  TARGET                       ZONE    WEIGHT  STATE      REASON           IN-FLIGHT
            web    10.0.0.5:8080                zone-a       1  healthy    -                        3
            web    [2001:db8::7]:8080 (static)  zone-b      10  unhealthy  connect_refused          0
            db     (none)                       -            -  -          -                        -
            note: db is failing open: no target is healthy, so traffic goes to all of them

            """)
    }

    @Test func emptyListIsJustTheHeader() {
        #expect(Render.targets([]) == "GROUP  TARGET  ZONE  WEIGHT  STATE  REASON  IN-FLIGHT\n")
    }

    @Test func status() {
        let s = StatusInfo(
            version: "0.3.0", uptimeSeconds: 93_784.5, zone: "zone-a", workers: 2, configFile: "/etc/sluice/sluice.yaml",
            configHash: "ab12", connectionsActive: 5, connectionsTotal: 1234, planGeneration: 7)
        #expect(Render.status(s) == """
            version:          0.3.0
            uptime:           1d 2h 3m 4s
            zone:             zone-a
            workers:          2
            config:           /etc/sluice/sluice.yaml
            config hash:      ab12
            plan generation:  7
            connections:      5 active, 1234 total

            """)
        #expect(Render.uptime(59) == "59s")
        #expect(Render.uptime(3_600) == "1h 0m 0s")
    }

    @Test func eventLine() {
        let e = ControlEvent(
            time: "2025-01-02T03:04:05.678Z", type: "target_state", group: "web", target: "10.0.0.5:8080",
            state: "unhealthy", reason: "timeout")
        #expect(Render.event(e) == "2025-01-02T03:04:05.678Z  target_state     web           10.0.0.5:8080          unhealthy  timeout")
        let reload = ControlEvent(time: "2025-01-02T03:04:05.678Z", kind: .reload, message: "generation 3\nok")
        #expect(Render.event(reload) == "2025-01-02T03:04:05.678Z  reload           -             -                      -          -  generation 3 ok")
    }

    @Test func reloadResult() {
        #expect(Render.reload(ReloadResult(ok: true, generation: 4)) == ("reloaded: plan generation 4\n", ""))
        let failed = Render.reload(ReloadResult(ok: false, generation: 4, errors: ["a.yaml:1:1: bad", "a.yaml:2:1: worse"]))
        #expect(failed.stdout.isEmpty)
        #expect(failed.stderr.hasPrefix("error: reload refused"))
        #expect(failed.stderr.hasSuffix("  a.yaml:1:1: bad\n  a.yaml:2:1: worse\n"))
    }

    @Test func prettyJSONIsStable() {
        let body = Data(#"{"b":1,"a":{"z":true,"y":[1,2]},"url":"/v1/x"}"#.utf8)
        #expect(JSON.pretty(body) == """
            {
              "a" : {
                "y" : [
                  1,
                  2
                ],
                "z" : true
              },
              "b" : 1,
              "url" : "/v1/x"
            }
            """)
        #expect(JSON.compact(Data(#"{"type":"reload", "time":"t"}"#.utf8)) == #"{"time":"t","type":"reload"}"#)
        #expect(JSON.pretty(Data("not json".utf8)) == "not json")
    }

    @Test func groupListShapes() throws {
        let group = #"{"name":"web","protocol":"http","algorithm":"rr","cross_zone":"true","fail_open":false,"targets":[]}"#
        #expect(try JSON.decode(GroupList.self, from: Data("[\(group)]".utf8)).groups.map(\.name) == ["web"])
        #expect(try JSON.decode(GroupList.self, from: Data(#"{"groups":[\#(group)]}"#.utf8)).groups.count == 1)
    }

    /// SPEC §6: the daemon sends `"reason": null` for a target without one; the table shows "-".
    @Test func nullReasonRendersAsDash() throws {
        let encoded = try JSON.encode([
            GroupInfo(
                name: "web", proto: "http", algorithm: "rr", crossZone: "true", failOpen: false,
                targets: [
                    TargetInfo(address: "10.0.0.1:80", state: "healthy"),
                    TargetInfo(address: "10.0.0.2:80", state: "unhealthy", reason: "connect_refused"),
                ])
        ])
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""reason":null"#))
        let groups = try JSON.decode(GroupList.self, from: encoded).groups
        #expect(groups[0].targets.map(\.reason) == [nil, "connect_refused"])
        let lines = Render.targets(groups).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].contains("healthy    -"))
        #expect(lines[2].contains("unhealthy  connect_refused"))
    }
}
