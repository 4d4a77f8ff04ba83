import ArgumentParser
import Foundation
import SluiceControl
import Testing

@testable import sluicectl

@Suite struct CommandTests {
    func parse(_ arguments: [String]) throws -> any ParsableCommand {
        try SluiceCtl.parseAsRoot(arguments)
    }

    func exitCode(_ arguments: [String]) -> Int32 {
        do {
            _ = try parse(arguments)
            return 0
        } catch {
            return ExitStatus.code(for: error)
        }
    }

    @Test func usageErrorsExit2() {
        #expect(exitCode(["targets", "register", "g", "bad-address"]) == 2)
        #expect(exitCode(["targets", "register", "g", "10.0.0.5:80", "--weight", "1000"]) == 2)
        #expect(exitCode(["targets", "register", "g", "10.0.0.5:80", "--weight", "heavy"]) == 2)
        #expect(exitCode(["targets", "register", "g"]) == 2)
        #expect(exitCode(["targets", "deregister", "g", "10.0.0.5:80", "--wait", "--timeout", "soon"]) == 2)
        #expect(exitCode(["targets", "deregister", "g", "10.0.0.5:80", "--timeout", "5m"]) == 2)
        #expect(exitCode(["targets", "set", "g", "10.0.0.5:80"]) == 2)
        #expect(exitCode(["targets", "set", "g", "[::1]:80", "--zone", ""]) == 2)
        #expect(exitCode(["frobnicate"]) == 2)
        #expect(exitCode(["status", "--bogus"]) == 2)
    }

    @Test func helpAndCompletionExit0() {
        #expect(exitCode(["--help"]) == 0)
        #expect(exitCode(["targets", "deregister", "--help"]) == 0)
        #expect(exitCode(["--generate-completion-script", "bash"]) == 0)
    }

    @Test func goodCommandLinesParse() throws {
        #expect(try parse(["status"]) is SluiceCtl.Status)
        #expect(try parse(["targets", "list"]) is SluiceCtl.Targets.List)
        #expect(try parse(["targets", "list", "web", "--json"]) is SluiceCtl.Targets.List)
        #expect(try parse(["targets", "register", "web", "[::1]:80", "--zone", "zone-b", "--weight", "0"])
            is SluiceCtl.Targets.Register)
        #expect(try parse(["targets", "set", "web", "10.0.0.5:80", "--weight", "999"]) is SluiceCtl.Targets.Set)
        #expect(try parse(["events", "--group", "web"]) is SluiceCtl.Events)
        #expect(try parse(["reload", "--socket", "/tmp/s.sock"]) is SluiceCtl.Reload)
        #expect(try parse(["check", "--config", "x.yaml"]) is SluiceCtl.Check)
    }

    @Test func socketOption() throws {
        let explicit = try #require(try parse(["status", "--socket", "/tmp/s.sock"]) as? SluiceCtl.Status)
        #expect(explicit.global.socketPath == "/tmp/s.sock")
        let implicit = try #require(try parse(["status"]) as? SluiceCtl.Status)
        #expect(implicit.global.socketPath == GlobalOptions.defaultSocket)
        #expect(implicit.global.json == false)
    }

    @Test func deregisterPaths() throws {
        let plain = try #require(try parse(["targets", "deregister", "web", "[::1]:80"]) as? SluiceCtl.Targets.Deregister)
        #expect(plain.path == "/v1/target-groups/web/targets/%5B%3A%3A1%5D%3A80")
        let waiting = try #require(
            try parse(["targets", "deregister", "web", "10.0.0.5:8080", "--wait"]) as? SluiceCtl.Targets.Deregister)
        #expect(waiting.path == "/v1/target-groups/web/targets/10.0.0.5%3A8080?wait=true&timeout=300s")
        let custom = try #require(
            try parse(["targets", "deregister", "web", "10.0.0.5:8080", "--wait", "--timeout", "1h30m"])
                as? SluiceCtl.Targets.Deregister)
        #expect(custom.path.hasSuffix("?wait=true&timeout=5400s"))
        #expect(SluiceCtl.Events.path(group: nil) == "/v1/events")
        #expect(SluiceCtl.Events.path(group: "web 1") == "/v1/events?group=web%201")
    }

    @Test func exitCodeMapping() {
        #expect(ExitStatus.code(for: CtlFailure.refused(status: 404, code: "not_found", message: "x")) == 1)
        #expect(ExitStatus.code(for: CtlFailure.failed) == 1)
        #expect(ExitStatus.code(for: CtlFailure.usage("x")) == 2)
        #expect(ExitStatus.code(for: CtlFailure.unreachable(.unreachable(socket: "/s", reason: "r"))) == 3)
        #expect(ExitStatus.code(for: ValidationError("x")) == 2)
        #expect(ExitStatus.code(for: ExitCode(1)) == 1)
    }

    @Test func refusalMessages() {
        let body = Array(#"{"error":{"code":"not_found","message":"target group \"x\" does not exist"}}"#.utf8)
        let refusal = CtlFailure.refusal(status: 404, body: body)
        #expect(refusal.description == #"error: not_found: target group "x" does not exist"#)
        #expect(CtlFailure.refusal(status: 502, body: Array("Bad\ngateway".utf8)).description == "error: http_502: Bad gateway")
        #expect(CtlFailure.refusal(status: 500, body: []).description == "error: http_500: the daemon answered 500")
    }
}
