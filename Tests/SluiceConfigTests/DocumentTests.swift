import Foundation
import SluiceConfig
import Testing

/// Whole-file problems: unreadable files, empty files, YAML syntax, error formatting.
@Suite struct DocumentTests {
    @Test func missingFileIsOneErrorWithTheOSReason() {
        let path = "/nonexistent-\(UUID().uuidString)/sluice.yaml"
        #expect(
            loadErrors(path: path) == [
                ConfigError(
                    file: path, line: 0, column: 0, path: "",
                    message: "cannot read the config file: No such file or directory (errno 2)")
            ])
    }

    @Test func directoryIsNotAConfigFile() {
        let errors = loadErrors(path: NSTemporaryDirectory())
        #expect(errors.count == 1)
        #expect(errors.first?.message == "cannot read the config file: Is a directory (errno 21)")
    }

    @Test func nonUTF8FileIsRefused() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-\(UUID().uuidString).yaml")
        try Data([0x6C, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]).write(to: url)
        #expect(
            loadErrors(path: url.path).map(\.message) == ["cannot read the config file: the file is not UTF-8 text"])
    }

    @Test(arguments: ["", "\n\n", "# only a comment\n"])
    func emptyFile(text: String) {
        #expect(
            loadErrors(text) == [
                ConfigError(
                    file: testFile, line: 1, column: 1, path: "",
                    message: "the file is empty; expected a mapping with at least \"listeners\"")
            ])
    }

    @Test func syntaxErrorAtTheReportedPosition() {
        let yaml = """
            listeners:
              - name: pg
                bind: [127.0.0.1:80
            target_groups: []
            """
        let errors = loadErrors(yaml)
        #expect(errors.count == 1)
        #expect(errors.map { "\($0.line):\($0.column) \($0.path)" } == ["4:14 "])
        #expect(
            errors.first?.message == "invalid YAML: did not find expected ',' or ']' "
                + "(while parsing a flow sequence at line 3, column 11)")
    }

    @Test func badIndentationIsASyntaxError() {
        let errors = loadErrors("listeners:\n  - name: a\n   bind: x\n")
        #expect(errors.count == 1)
        #expect(errors.first?.line == 3)
        #expect(errors.first?.message.hasPrefix("invalid YAML: ") == true)
    }

    @Test func secondDocumentIsRefused() {
        #expect(
            loadErrors(minimalYAML + "\n---\nnode: {}\n") == [
                ConfigError(
                    file: testFile, line: 11, column: 1, path: "",
                    message: "a config file holds one YAML document; found a second one here")
            ])
    }

    @Test func descriptionsFollowFileLineColumnPathMessage() {
        let error = ConfigError(
            file: "/etc/sluice/sluice.yaml", line: 12, column: 7,
            path: "target_groups[0].targets[2].weight", message: "expected a weight from 0 to 999, got 1000")
        #expect(
            error.description
                == "/etc/sluice/sluice.yaml:12:7: target_groups[0].targets[2].weight: "
                + "expected a weight from 0 to 999, got 1000"
        )
        let unreadable = ConfigError(file: "x.yaml", line: 0, column: 0, path: "", message: "cannot read")
        #expect(unreadable.description == "x.yaml:0:0: cannot read")
        #expect(ConfigErrors([error, unreadable]).description == error.description + "\n" + unreadable.description)
    }

    @Test func aliasesAreFollowed() throws {
        let yaml = """
            target_groups:
              - &db { name: db, protocol: tcp, targets: [ { address: 127.0.0.1:1 } ] }
            listeners:
              - { name: pg, protocol: tcp, bind: 127.0.0.1:5432, default: { forward: db } }
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: testFile)
        #expect(config.targetGroups.count == 1)
    }

    @Test func byteOrderMarkIsIgnored() throws {
        let config = try ConfigLoader.parse(yaml: "\u{FEFF}" + minimalYAML, file: testFile)
        #expect(config.listeners.count == 1)
        #expect(positions("\u{FEFF}node: { zone: \"a b\" }\n" + minimalYAML) == ["1:15 node.zone"])
    }

    @Test func unquotedIPv6GetsAHint() {
        let errors = loadErrors("listeners:\n  - name: a\n    bind: [::1]:80\n")
        #expect(errors.map { "\($0.line):\($0.column)" } == ["3:12"])
        #expect(errors.first?.message.hasSuffix("; an IPv6 address must be quoted, as in \"[::1]:80\"") == true)
    }

    @Test func quotedAndPlainSpellingsOfAKeyAreDuplicates() {
        let yaml = "node: { 'zone': a, \"zone\": b }\n" + minimalYAML
        #expect(positions(yaml) == ["1:20 node.zone"])
    }

    @Test func aliasExpansionIsBounded() {
        let ten = { (name: String) in "[" + Array(repeating: "*\(name)", count: 10).joined(separator: ", ") + "]" }
        let yaml = """
            a: &a [x, x, x, x, x, x, x, x, x, x]
            b: &b \(ten("a"))
            c: &c \(ten("b"))
            d: &d \(ten("c"))
            e: &e \(ten("d"))
            f: \(ten("e"))
            """
        #expect(loadErrors(yaml).map(\.message) == ["the document expands to more than 200000 nodes through aliases"])
    }
}
