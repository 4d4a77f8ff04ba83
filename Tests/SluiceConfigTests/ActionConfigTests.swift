import SluiceConfig
import Testing

/// `redirect` and `respond` actions (SPEC §3), in `default` and in rules.
@Suite struct ActionConfigTests {
    /// The http listener document with `default:` replaced by `action`.
    private func defaultDocument(_ action: String) -> String {
        httpListenerDocument("").replacingOccurrences(of: "default: { forward: app }", with: "default: \(action)")
    }

    private func defaultAction(_ action: String) -> ListenerAction? {
        load(defaultDocument(action))?.listeners[0].defaultAction
    }

    @Test func redirects() {
        #expect(
            defaultAction("{ redirect: { status: 301, protocol: HTTPS, port: 443 } }")
                == .redirect(RedirectAction(status: 301, scheme: "https", port: "443")))
        #expect(
            defaultAction(
                "{ redirect: { status: 302, host: \"www.#{host}\", port: \"#{port}\", path: \"/x/#{path}\", "
                    + "query: \"a=1&#{query}\" } }")
                == .redirect(RedirectAction(status: 302, host: "www.#{host}", path: "/x/#{path}", query: "a=1&#{query}")))
        #expect(
            defaultAction("{ redirect: { status: 302, query: \"\" } }")
                == .redirect(RedirectAction(status: 302, query: "")))
        #expect(
            defaultAction("{ redirect: { status: 301, port: \"8443\" } }")
                == .redirect(RedirectAction(status: 301, port: "8443")))
    }

    @Test(arguments: [
        "{ status: 301 }",
        "{ status: 302, protocol: \"#{protocol}\", host: \"#{host}\", port: \"#{port}\", path: \"/#{path}\", "
            + "query: \"#{query}\" }",
    ])
    func aRedirectThatChangesNothingIsAnError(redirect: String) {
        #expect(
            loadErrors(defaultDocument("{ redirect: \(redirect) }")) == [
                ConfigError(
                    file: testFile, line: 5, column: 26, path: "listeners[0].default.redirect",
                    message: "this redirect changes nothing (every part is left out or keeps its own value), so it "
                        + "would loop; set at least one of protocol, host, port, path or query to something else")
            ])
    }

    @Test func badRedirectParts() {
        let yaml = rulesDocument(
            """
            - priority: 1
              when: { path: /old }
              then:
                redirect:
                  status: 303
                  protocol: ftp
                  host: "#{hots}.example"
                  port: 0
                  path: "new"
                  query: "?a=1"
            - priority: 2
              when: { path: /old2 }
              then: { redirect: { protocol: https, path: "/#{path" } }
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "11:21 listeners[0].rules[0].then.redirect.status: expected 301 or 302, got 303",
                "12:23 listeners[0].rules[0].then.redirect.protocol: expected http, https or #{protocol}, got \"ftp\"",
                "13:19 listeners[0].rules[0].then.redirect.host: unknown placeholder #{hots} in \"#{hots}.example\"; "
                    + "known: #{protocol}, #{host}, #{port}, #{path}, #{query}",
                "14:19 listeners[0].rules[0].then.redirect.port: expected a port from 1 to 65535 or #{port}, got 0",
                "15:19 listeners[0].rules[0].then.redirect.path: expected a path starting with / (like "
                    + "/new/#{path}), got \"new\"",
                "16:20 listeners[0].rules[0].then.redirect.query: expected a query string without the leading ? and "
                    + "spaces, got \"?a=1\"",
                "19:27 listeners[0].rules[1].then.redirect.status: missing required key \"status\" (301 or 302)",
                "19:52 listeners[0].rules[1].then.redirect.path: unterminated placeholder in \"/#{path\": expected "
                    + "#{NAME}",
            ])
    }

    @Test func responds() {
        #expect(
            defaultAction("{ respond: { status: 404 } }")
                == .respond(FixedResponse(status: 404, contentType: "text/plain", body: [])))
        #expect(
            defaultAction("{ respond: { status: 503, content_type: \"application/json; charset=utf-8\", body: '{}' } }")
                == .respond(FixedResponse(status: 503, contentType: "application/json; charset=utf-8", body: [123, 125])))
        let kib = String(repeating: "x", count: 1024)
        #expect(defaultAction("{ respond: { status: 200, body: \(kib) } }") != nil)
    }

    @Test func badResponds() {
        let long = String(repeating: "é", count: 513)  // 1026 bytes
        let yaml = rulesDocument(
            """
            - { priority: 1, when: { path: /a }, then: { respond: { status: 302 } } }
            - { priority: 2, when: { path: /b }, then: { respond: { status: 600, content_type: text } } }
            - { priority: 3, when: { path: /c }, then: { respond: { body: \(long) } } }
            - { priority: 4, when: { path: /d }, then: { respond: { status: 100, headers: {} } } }
            """)
        #expect(
            loadErrors(yaml).map { "\($0.line):\($0.column) \($0.path): \($0.message)" } == [
                "7:71 listeners[0].rules[0].then.respond.status: expected a status from 200 to 299 or 400 to 599, "
                    + "got 302 (use redirect for 3xx)",
                "8:71 listeners[0].rules[1].then.respond.status: expected a status from 200 to 299 or 400 to 599, "
                    + "got 600",
                "8:90 listeners[0].rules[1].then.respond.content_type: expected a media type like text/plain or "
                    + "application/json, got \"text\"",
                "9:61 listeners[0].rules[2].then.respond.status: missing required key \"status\" (a status from 200 "
                    + "to 299 or 400 to 599)",
                "9:69 listeners[0].rules[2].then.respond.body: a respond body may have at most 1024 bytes, this one "
                    + "has 1026",
                "10:71 listeners[0].rules[3].then.respond.status: expected a status from 200 to 299 or 400 to 599, "
                    + "got 100",
                "10:76 listeners[0].rules[3].then.respond.headers: unknown key \"headers\"; allowed keys: status, "
                    + "content_type, body",
            ])
    }

    @Test func exactlyOneAction() {
        #expect(
            loadErrors(defaultDocument("{ forward: app, respond: { status: 200 } }")) == [
                ConfigError(
                    file: testFile, line: 5, column: 30, path: "listeners[0].default.respond",
                    message: "an action has exactly one of forward, redirect or respond; this one also has forward")
            ])
        #expect(
            loadErrors(defaultDocument("{}")) == [
                ConfigError(
                    file: testFile, line: 5, column: 14, path: "listeners[0].default",
                    message: "expected one of forward, redirect or respond, got an empty action")
            ])
    }

    @Test func tcpListenersOnlyForward() {
        let yaml = listenerDocument("").replacingOccurrences(
            of: "{ forward: db }", with: "{ redirect: { status: 301, protocol: https } }")
        #expect(
            loadErrors(yaml) == [
                ConfigError(
                    file: testFile, line: 5, column: 16, path: "listeners[0].default.redirect",
                    message: "\"redirect\" is an action of http listeners; a tcp listener can only forward")
            ])
    }
}
