import SluiceConfig
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// One scaling activity from choice to end (SPEC §11): what the group needs now (`nextWork`),
/// and its body on a thread of its own — the launch hook and the registration of the address it
/// printed, or the drain and the terminate hook — then its result (`finish`).
extension Scaler {
    /// What an activity does.
    struct Work {
        var kind: ScalingActivity.Kind
        var cause: String
        var description: String
        var target: ControlPlane.ScalingTarget?
        var zone: String?
        /// Terminating an unhealthy target that maintain will replace.
        var replacement = false
    }

    /// The activity the group needs now, if any: a replacement, a launch or a termination.
    static func nextWork(_ g: Group, live: [ControlPlane.ScalingTarget], now: UInt64) -> Work? {
        let limit = g.config.replaceUnhealthyAfter
        if let sick = live.first(where: { t in
            !t.isStatic && g.unhealthySince[t.address].map { now >= $0 && now - $0 >= limit } == true
        }) {
            let cause = "unhealthy for \(ScalingConfig.durationText(limit))"
            return Work(kind: .terminate, cause: cause, description: "Terminating \(sick.address) (replacing an unhealthy target)",
                        target: sick, replacement: true)
        }
        if live.count < g.desired {
            guard now >= g.nextLaunchAt else { return nil }
            return Work(kind: .launch, cause: g.cause,
                        description: "Launching a target: \(live.count) of \(g.desired)")
        }
        if live.count > g.desired {
            let candidates = live.enumerated().map { i, t in
                TerminationChoice.Candidate(address: t.address, zone: t.zone, unhealthy: t.state == "unhealthy",
                                            isStatic: t.isStatic, draining: t.draining, order: i)
            }
            guard let i = TerminationChoice.pick(candidates) else { return nil }
            return Work(kind: .terminate, cause: g.cause,
                        description: "Terminating \(live[i].address): \(live.count) of \(g.desired)", target: live[i])
        }
        return nil
    }

    func launchThread(_ activity: ScalingActivity, _ work: Work) {
        do {
            let t = try WorkerThread(name: "scaling") { [self] in run(activity, work) }
            state.withLock { $0.threads[activity.id] = t }
        } catch {
            finish(activity, ok: false, message: "cannot start a thread: \(error)", target: work.target?.address, launch: work.kind == .launch)
        }
    }

    /// The body of an activity (its own thread).
    func run(_ activity: ScalingActivity, _ work: Work) {
        defer { state.withLock { $0.finished.append(activity.id) } }
        guard let g = state.withLock({ $0.groups[activity.group] }) else {
            finish(activity, ok: false, message: "the group is no longer managed", target: nil, launch: false)
            return
        }
        let name = activity.group
        switch work.kind {
        case .launch:
            let live = (env.targets(name) ?? []).filter { !$0.draining }
            let zone = LaunchZone.pick(nodeZone: env.nodeZone(), targetZones: live.map(\.zone), nodeZones: env.fleetZones())
            let outcome = env.runHook(g.config.launch, ["SLUICE_GROUP": name, "SLUICE_ZONE": zone, "SLUICE_ACTIVITY": activity.id],
                                      g.config.hookTimeout)
            logStderr(outcome, hook: "launch", group: name)
            guard outcome.succeeded else {
                let text = outcome.timedOut
                    ? "launch hook timed out after \(ScalingConfig.durationText(g.config.hookTimeout))" : "launch hook: \(outcome.failureText)"
                finish(activity, ok: false, message: text, target: nil, launch: true)
                return
            }
            switch HookOutput.parse(outcome.stdout) {
            case .failure(let e):
                finish(activity, ok: false, message: "launch hook: \(e.message)", target: nil, launch: true)
            case .success(let answer):
                do {
                    guard try env.register(name, answer.address, answer.zone ?? zone) else {
                        // Counting it as launched would launch for ever: a failed attempt.
                        finish(activity, ok: false, message: "launch hook printed \(answer.address), already registered in \(name)",
                               target: answer.address, launch: true)
                        return
                    }
                    finish(activity, ok: true, message: "registered \(answer.address) in \(answer.zone ?? zone)",
                           target: answer.address, launch: true)
                } catch {
                    finish(activity, ok: false, message: "registering \(answer.address): \(Scaler.text(error))",
                           target: answer.address, launch: true)
                }
            }
        case .terminate, .setDesired:
            guard let target = work.target else {
                finish(activity, ok: false, message: "no target", target: nil, launch: false)
                return
            }
            do {
                try env.deregisterAndWait(name, target.address)
            } catch let r as ControlPlane.Refusal where r.code == "TargetNotFound" {
                // Gone already: terminate it all the same.
            } catch {
                finish(activity, ok: false, message: "draining \(target.address): \(Scaler.text(error))",
                       target: target.address, launch: false)
                return
            }
            guard let terminateHook = g.config.terminate else {
                finish(activity, ok: true, message: "drained and deregistered \(target.address) (no terminate hook)",
                       target: target.address, launch: false)
                return
            }
            let outcome = env.runHook(terminateHook, ["SLUICE_GROUP": name, "SLUICE_ZONE": target.zone,
                                                          "SLUICE_TARGET": target.address, "SLUICE_ACTIVITY": activity.id],
                                      g.config.hookTimeout)
            logStderr(outcome, hook: "terminate", group: name)
            if outcome.succeeded {
                finish(activity, ok: true, message: "drained and terminated \(target.address)", target: target.address, launch: false)
            } else {
                let text = outcome.timedOut
                    ? "terminate hook timed out after \(ScalingConfig.durationText(g.config.hookTimeout))"
                    : "terminate hook: \(outcome.failureText)"
                finish(activity, ok: false, message: "drained \(target.address); \(text)", target: target.address, launch: false)
            }
        }
    }

    /// Ends an activity: records its result, frees the group, tells the event.
    func finish(_ activity: ScalingActivity, ok: Bool, message: String, target: String?, launch: Bool) {
        let now = env.clock()
        var done = activity
        done.result = ok ? .successful : .failed
        done.endTime = env.timestamp()
        done.message = message
        done.target = target ?? activity.target
        let desired = state.withLock { s -> Int? in
            guard var g = s.groups[activity.group] else { return nil }
            if g.busy == activity.id { g.busy = nil }
            g.lastActivityEnd = now
            if launch {
                if ok {
                    g.launchFailures = 0
                    g.nextLaunchAt = 0
                } else {
                    g.launchFailures += 1
                    g.nextLaunchAt = now &+ LaunchBackoff.delay(afterFailures: g.launchFailures)
                }
            }
            Scaler.record(&g, done)
            s.groups[activity.group] = g
            return g.desired
        }
        env.emit(Scaler.event(done, desired: desired))
        Posix.signalEventfd(wake)
    }

    func logStderr(_ outcome: HookRunner.Outcome, hook: String, group: String) {
        guard !outcome.stderr.isEmpty else { return }
        let text = String(decoding: outcome.stderr, as: UTF8.self)
            .unicodeScalars.map { $0.value < 0x20 && $0 != "\n" ? "?" : String($0) }.joined()
        for line in text.split(separator: "\n").prefix(20) {
            env.log("\(hook) hook of \(group): \(line.prefix(512))")
        }
    }
}
