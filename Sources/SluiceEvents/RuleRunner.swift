import Dispatch
import Foundation
import SluiceConfig
import SluiceCore
import Synchronization

/// One rule at run time: its outbox (file and state) and its delivery thread, which delivers the
/// outbox's events strictly in order — the next waits until the current one succeeded or went to
/// the dead letters. A rule removed by a reload is paused (`active` false), never torn down, so a
/// rule of the same name later resumes on the same outbox with no second thread on the file.
final class RuleRunner: Sendable {
    /// What a delivery attempt needs; replaced by reloads.
    struct Settings: Sendable {
        var rule: EventRuleConfig
        var retry: EventRetryConfig
        var active: Bool
        /// For an `https://` webhook: the client context (CA, certificate checks).
        var tls: TLSClientContext?
    }

    private struct Locked {
        var state: OutboxState
        var settings: Settings
        var stopping = false
        /// Set when the file could not be written: the rule then accepts no new events.
        var failure: String?
    }

    let name: String
    private let file: Mutex<OutboxFile?>
    private let locked: Mutex<Locked>
    private let wake = DispatchSemaphore(value: 0)
    let successes = Atomic<UInt64>(0)
    let failures = Atomic<UInt64>(0)
    private let log: @Sendable (String) -> Void

    /// Opens the rule's outbox in `directory` and replays it.
    init(settings: Settings, directory: String, log: @escaping @Sendable (String) -> Void) throws(OutboxFile.Failure) {
        name = settings.rule.name
        let f = try OutboxFile(directory: directory, name: settings.rule.name)
        let (records, dropped) = try f.load()
        if dropped > 0 { log("events: \(f.path): dropped a torn or corrupt tail of \(dropped) bytes") }
        var state = OutboxState(replaying: records)
        if state.wantsCompaction {
            try f.rewrite(state.compacted())
            state.didCompact()
        }
        file = Mutex(f)
        locked = Mutex(Locked(state: state, settings: settings))
        self.log = log
    }

    func start() throws {
        let thread = Thread { [self] in
            Posix.setThreadName("events-\(name.prefix(8))")
            // Writing an exec program's stdin after it exited must give EPIPE, not kill the process
            // (sluiced ignores SIGPIPE; a library cannot assume it): block it on this thread.
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            deliveryLoop()
        }
        thread.start()
    }

    func update(_ settings: Settings) {
        locked.withLock { $0.settings = settings }
        wake.signal()
    }

    func stop() {
        locked.withLock { $0.stopping = true }
        wake.signal()
    }

    var settings: Settings { locked.withLock { $0.settings } }

    /// Appends `event` durably (fsync) when the rule is active and matches it. Called on the publishing thread.
    func offer(_ event: ControlEventRef) {
        let appended: Bool = locked.withLock { l in
            guard l.settings.active, l.failure == nil, EventMatcher.matches(event.event, l.settings.rule.match) else {
                return false
            }
            let record = OutboxRecord.event(id: event.id, json: event.json)
            do throws(OutboxFile.Failure) {
                try file.withLock { f throws(OutboxFile.Failure) in try f?.append([record], sync: true) }
            } catch {
                l.failure = error.description
                log("events: rule \(name): \(error); the rule takes no more events until restarted")
                return false
            }
            l.state.apply(record)
            return true
        }
        if appended { wake.signal() }
    }

    var pendingCount: Int { locked.withLock { $0.state.pendingCount } }
    var deadLetters: [OutboxState.DeadLetter] { locked.withLock { $0.state.dead } }

    /// Moves the dead letter `id` back to the end of the outbox with fresh attempts; false if there is none.
    func redeliver(_ id: String) throws(OutboxFile.Failure) -> Bool {
        let done: Bool = try locked.withLock { l throws(OutboxFile.Failure) -> Bool in
            guard let letter = l.state.dead.first(where: { $0.id == id }) else { return false }
            // Event first, mark second: a crash between them leaves a duplicate, never a loss.
            let records: [OutboxRecord] = [.event(id: letter.id, json: letter.json), .revived(id: id)]
            try file.withLock { f throws(OutboxFile.Failure) in try f?.append(records, sync: true) }
            for r in records { l.state.apply(r) }
            return true
        }
        if done { wake.signal() }
        return done
    }

    // MARK: Delivery thread

    private enum Next {
        case deliver(OutboxState.Pending, Settings)
        case wait
        case stop
    }

    private func next() -> Next {
        locked.withLock { l in
            if l.stopping { return .stop }
            guard l.settings.active, let first = l.state.first else { return .wait }
            return .deliver(first, l.settings)
        }
    }

    private func deliveryLoop() {
        while true {
            switch next() {
            case .stop: return
            case .wait: wake.wait()
            case .deliver(let pending, let settings): deliver(pending, settings: settings)
            }
        }
    }

    /// Attempts `pending` until it succeeds, runs out of attempts, or the rule pauses or stops.
    private func deliver(_ pending: OutboxState.Pending, settings first: Settings) {
        var settings = first
        var attempt = 0
        while true {
            attempt += 1
            let failure = attemptOnce(pending, settings)
            if failure == nil {
                successes.add(1, ordering: .relaxed)
                mark(.delivered(id: pending.id), sync: false)
                return
            }
            failures.add(1, ordering: .relaxed)
            let error = failure ?? ""
            if attempt >= settings.retry.attempts {
                log("events: rule \(name): event \(pending.id) failed \(attempt) attempts, now a dead letter: \(error)")
                mark(.dead(id: pending.id, attempts: attempt, failedAt: ControlEventRef.now(), error: error), sync: true)
                return
            }
            let deadline = Posix.monotonicNanos() &+ settings.retry.delay(afterFailedAttempt: attempt)
            while true {
                let now = Posix.monotonicNanos()
                if now >= deadline { break }
                _ = wake.wait(timeout: .now() + .nanoseconds(Int(clamping: deadline - now)))
                let (stopping, active) = locked.withLock { ($0.stopping, $0.settings.active) }
                if stopping || !active { return }
            }
            settings = locked.withLock { $0.settings }
            guard settings.active else { return }
        }
    }

    private func attemptOnce(_ pending: OutboxState.Pending, _ settings: Settings) -> String? {
        switch settings.rule.deliver {
        case .webhook(let target, let secret):
            return WebhookClient.post(target, id: pending.id, body: pending.json, secret: secret, tls: settings.tls)
        case .exec(let program):
            return ExecDelivery.run(program: program, json: pending.json, id: pending.id,
                                    type: ControlEventRef.type(of: pending.json), rule: name)
        }
    }

    /// Records the fate of the first pending event; compacts the file when delivered records dominate it.
    private func mark(_ record: OutboxRecord, sync: Bool) {
        locked.withLock { l in
            do throws(OutboxFile.Failure) {
                try file.withLock { f throws(OutboxFile.Failure) in try f?.append([record], sync: sync) }
                l.state.apply(record)
                if l.state.wantsCompaction {
                    try file.withLock { f throws(OutboxFile.Failure) in try f?.rewrite(l.state.compacted()) }
                    l.state.didCompact()
                }
            } catch {
                // Memory moves on (or this event would be retried forever); the file still holds it as
                // pending, so a restart delivers it again: at least once.
                l.state.apply(record)
                log("events: rule \(name): \(error)")
            }
        }
    }
}
