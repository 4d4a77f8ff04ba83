import Foundation
import SluiceConfig
import SluiceControl
import SluiceCore
import Synchronization

/// The event rules of SPEC §13 at run time: one `RuleRunner` per rule name, the synchronous sink the
/// `EventBus` calls for every event, dead letters and metrics for the control API.
///
/// Cost: an event that matches at least one rule is appended and fsync'ed (`fdatasync`) on the
/// thread that publishes it — always a control thread (control API, health checker, reload), never
/// a worker — before `publish` returns; an event that matches none costs the match only.
public final class EventRules: Sendable {
    /// Per rule, for `/metrics`.
    public struct RuleMetrics: Sendable, Equatable {
        public var rule: String
        public var successes: UInt64
        public var failures: UInt64
        public var outboxLength: Int
        public var deadLetters: Int
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `{statedir}/events`.
    public let directory: String
    private let runners = Mutex<[String: RuleRunner]>([:])
    /// Rule names in config order (active ones), then paused ones.
    private let order = Mutex<[String]>([])
    private let log: @Sendable (String) -> Void

    /// Rules keep their outboxes in `directory` (created when missing).
    public init(directory: String, log: @escaping @Sendable (String) -> Void) {
        self.directory = directory
        self.log = log
    }

    /// `{directory of statePath}/events`.
    public static func directory(forStateFile statePath: String) -> String {
        guard let slash = statePath.lastIndex(of: "/") else { return "events" }
        let parent = statePath[..<slash]
        return (parent.isEmpty ? "" : String(parent)) + "/events"
    }

    /// Starts, updates and pauses runners to match `config`. Returns a problem per rule whose outbox
    /// could not be opened (those rules do not run).
    @discardableResult
    public func apply(_ config: EventsConfig?) -> [String] {
        let rules = config?.rules ?? []
        let retry = config?.retry ?? EventRetryConfig()
        var problems: [String] = []
        if !rules.isEmpty {
            do throws(OutboxFile.Failure) {
                try OutboxFile.makeDirectory(directory)
            } catch {
                return [error.description]
            }
        }
        var names: [String] = []
        for rule in rules {
            var settings = RuleRunner.Settings(rule: rule, retry: retry, active: true)
            if case .webhook(let target, _) = rule.deliver, target.tls {
                do {
                    settings.tls = try TLSClientContext(verify: true, caFile: target.caFile, alpn: ["http/1.1"])
                } catch {
                    problems.append("events: rule \(rule.name): TLS: \(error)")
                    continue
                }
            }
            if let runner = runners.withLock({ $0[rule.name] }) {
                runner.update(settings)
                names.append(rule.name)
                continue
            }
            do {
                let runner = try RuleRunner(settings: settings, directory: directory, log: log)
                try runner.start()
                runners.withLock { $0[rule.name] = runner }
                names.append(rule.name)
            } catch {
                problems.append("events: rule \(rule.name): \(error)")
            }
        }
        let all = runners.withLock { $0 }
        for (name, runner) in all where !names.contains(name) {
            var s = runner.settings
            if s.active {
                s.active = false
                runner.update(s)
            }
        }
        order.withLock { $0 = names }
        for p in problems { log(p) }
        return problems
    }

    /// The `EventBus` sink: appends `event` to the outbox of every rule it matches, durably, before returning.
    public func offer(_ event: ControlEvent) {
        let active = activeRunners()
        guard !active.isEmpty, let ref = ControlEventRef(event) else { return }
        for r in active { r.offer(ref) }
    }

    private func activeRunners() -> [RuleRunner] {
        let names = order.withLock { $0 }
        return runners.withLock { all in names.compactMap { all[$0] } }
    }

    private func allRunners() -> [RuleRunner] {
        let names = order.withLock { $0 }
        return runners.withLock { all in
            names.compactMap { all[$0] } + all.keys.filter { !names.contains($0) }.sorted().compactMap { all[$0] }
        }
    }

    /// Every rule's dead letters, oldest first per rule.
    public func failed() -> [FailedEvent] {
        var out: [FailedEvent] = []
        let decoder = JSONDecoder()
        for r in allRunners() {
            for d in r.deadLetters {
                let event = (try? decoder.decode(ControlEvent.self, from: Data(d.json)))
                    ?? ControlEvent(id: d.id, time: "", type: "")
                out.append(FailedEvent(id: d.id, rule: r.name, event: event, attempts: d.attempts, error: d.error,
                                       failedAt: d.failedAt))
            }
        }
        return out
    }

    /// Appends the dead letter `id` again to its rule's outbox (every rule where it is one), with
    /// fresh attempts. False when no rule has a dead letter with that id.
    public func redeliver(id: String) throws(Failure) -> Bool {
        var found = false
        for r in allRunners() {
            do throws(OutboxFile.Failure) {
                if try r.redeliver(id) { found = true }
            } catch {
                throw Failure(description: error.description)
            }
        }
        return found
    }

    public func metrics() -> [RuleMetrics] {
        allRunners().map {
            RuleMetrics(rule: $0.name, successes: $0.successes.load(ordering: .relaxed),
                        failures: $0.failures.load(ordering: .relaxed), outboxLength: $0.pendingCount,
                        deadLetters: $0.deadLetters.count)
        }
    }

    /// Stops every delivery thread (an attempt under way finishes first, on its own).
    public func stop() {
        for r in runners.withLock({ Array($0.values) }) { r.stop() }
    }
}
