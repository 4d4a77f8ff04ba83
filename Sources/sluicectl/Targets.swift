import ArgumentParser
import Foundation
import SluiceControl

extension SluiceCtl {
    /// `sluicectl targets …`: list, register, deregister and change targets of target groups.
    struct Targets: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, register, deregister and change targets.",
            discussion: """
                Targets registered here are written to the daemon's state file before it answers and \
                survive restarts. Targets named in the configuration file are static: they can be \
                drained here, but the file owns them.
                """,
            subcommands: [List.self, Register.self, Deregister.self, Set.self])

        static func targetsPath(_ group: String) -> String {
            "/v1/target-groups/\(Arguments.pathSegment(group))/targets"
        }

        static func targetPath(_ group: String, _ address: String) -> String {
            targetsPath(group) + "/" + Arguments.pathSegment(address)
        }

        static func validateGroup(_ group: String) throws {
            if group.isEmpty { throw ValidationError("GROUP is empty: name a target group") }
        }
    }
}

extension SluiceCtl.Targets {
    /// `sluicectl targets list [GROUP]`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show targets with their zone, weight, health state, reason and in-flight requests.",
            discussion: """
                Prints one row per target: GROUP TARGET ZONE WEIGHT STATE REASON IN-FLIGHT. Static \
                targets (named in the configuration file) are marked "(static)". A group failing \
                open (no healthy target, traffic sent to all) gets a note below the table.
                """)

        @Argument(help: ArgumentHelp("Only this target group.", valueName: "group"))
        var group: String?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let group { try SluiceCtl.Targets.validateGroup(group) }
        }

        func run() throws {
            let path = group.map { "/v1/target-groups/\(Arguments.pathSegment($0))" } ?? "/v1/target-groups"
            let answer = try global.call("GET", path)
            if global.printJSONIfAsked(answer.body) { return }
            let groups: [GroupInfo]
            if group != nil {
                groups = [try decodeAnswer(GroupInfo.self, answer.body, socket: global.socketPath)]
            } else {
                groups = try decodeAnswer(GroupList.self, answer.body, socket: global.socketPath).groups
            }
            print(Render.targets(groups), terminator: "")
        }
    }

    /// `sluicectl targets register GROUP ADDRESS [--zone Z] [--weight W]`.
    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a target to a group (idempotent).",
            discussion: """
                Registers ADDRESS (HOST:PORT, IPv6 as [::1]:80) in GROUP. The target starts taking \
                traffic once its health check passes. Registering a target that is already there \
                succeeds and changes nothing (use `targets set` to change weight or zone).

                Example, from an instance's boot script:
                  sluicectl targets register web 10.0.0.5:8080 --zone zone-b --weight 1
                """)

        @Argument(help: ArgumentHelp("Target group.", valueName: "group"))
        var group: String

        @Argument(help: ArgumentHelp("Target address, HOST:PORT (IPv6 as [::1]:80).", valueName: "address"))
        var address: String

        @Option(name: .long, help: ArgumentHelp("Availability zone of the target (default: the daemon's zone).", valueName: "zone"))
        var zone: String?

        @Option(name: .long, help: ArgumentHelp("Weight from 0 to 999 (default 1).", valueName: "weight"))
        var weight: Int?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try SluiceCtl.Targets.validateGroup(group)
            if let problem = Arguments.addressError(address) { throw ValidationError(problem) }
            if let problem = Arguments.zoneError(zone) { throw ValidationError(problem) }
            if let problem = Arguments.weightError(weight) { throw ValidationError(problem) }
        }

        func run() throws {
            let body = try JSON.encode(RegisterRequest(address: address, zone: zone, weight: weight))
            let answer = try global.call("POST", SluiceCtl.Targets.targetsPath(group), body: body)
            if global.printJSONIfAsked(answer.body) { return }
            let verb = answer.status == 201 ? "registered" : "already registered"
            if let target = try? JSON.decode(TargetInfo.self, from: answer.body) {
                print("\(verb): \(Render.target(target, group: group))")
            } else {
                print("\(verb): \(address) in \(group)")
            }
        }
    }

    /// `sluicectl targets deregister GROUP ADDRESS [--wait] [--timeout 5m]`.
    struct Deregister: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drain a target and remove it from a group.",
            discussion: """
                The target stops receiving new connections and requests at once; the ones in flight \
                finish (draining). Without --wait the command returns as soon as draining starts. \
                With --wait it returns when draining has ended, or fails (exit 1, error code \
                "timeout") if it has not ended within --timeout (default 5m).

                This is the autoscaling lifecycle hook: run it before an instance is terminated, and \
                terminate the instance once it succeeds. For example, in an EC2 Auto Scaling \
                termination lifecycle hook handler on the load balancer host:

                  sluicectl targets deregister web 10.0.0.5:8080 --wait --timeout 5m &&
                  aws autoscaling complete-lifecycle-action \\
                    --lifecycle-action-result CONTINUE --lifecycle-hook-name drain \\
                    --auto-scaling-group-name web-asg --instance-id i-0123456789abcdef0

                Keep the hook's heartbeat timeout longer than --timeout. Static targets (named in the \
                configuration file) can be drained but stay in the file.
                """)

        @Argument(help: ArgumentHelp("Target group.", valueName: "group"))
        var group: String

        @Argument(help: ArgumentHelp("Target address, HOST:PORT (IPv6 as [::1]:80).", valueName: "address"))
        var address: String

        @Flag(name: .long, help: "Wait until the target has drained.")
        var wait = false

        @Option(
            name: .long,
            help: ArgumentHelp(
                "With --wait, the longest time to wait for draining, as 90s, 5m or 1h (default 5m).",
                valueName: "duration"))
        var timeout: String?

        @OptionGroup var global: GlobalOptions

        static let defaultTimeout = "5m"
        /// Slack the client allows beyond `--timeout` for the daemon to answer.
        static let answerSlack: Duration = .seconds(30)

        var timeoutSeconds: UInt64 { Arguments.seconds(ofDuration: timeout ?? Self.defaultTimeout) ?? 300 }

        func validate() throws {
            try SluiceCtl.Targets.validateGroup(group)
            if let problem = Arguments.addressError(address) { throw ValidationError(problem) }
            if let timeout {
                guard wait else { throw ValidationError("--timeout applies only with --wait") }
                guard Arguments.seconds(ofDuration: timeout) != nil else {
                    throw ValidationError(
                        "invalid duration \"\(timeout)\" for --timeout: expected a duration more than 0s, such as 90s, 5m or 1h")
                }
            }
        }

        var path: String {
            let base = SluiceCtl.Targets.targetPath(group, address)
            return wait ? base + "?wait=true&timeout=\(timeoutSeconds)s" : base
        }

        func run() throws {
            // With --wait the daemon answers when draining ends: wait at least --timeout plus slack.
            let clientTimeout: Duration =
                wait ? .seconds(Int64(clamping: timeoutSeconds)) + Self.answerSlack : ControlClient.defaultTimeout
            let answer = try global.call("DELETE", path, timeout: clientTimeout)
            if global.printJSONIfAsked(answer.body) { return }
            let verb = wait ? "drained" : "draining"
            if let target = try? JSON.decode(TargetInfo.self, from: answer.body) {
                print("\(verb): \(Render.target(target, group: group))")
            } else {
                print("\(verb): \(address) in \(group)")
            }
        }
    }

    /// `sluicectl targets set GROUP ADDRESS [--weight W] [--zone Z]`.
    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a target's weight or zone.",
            discussion: """
                Weight 0 keeps the target registered and health-checked but sends it no new traffic. \
                Example: sluicectl targets set web 10.0.0.5:8080 --weight 5
                """)

        @Argument(help: ArgumentHelp("Target group.", valueName: "group"))
        var group: String

        @Argument(help: ArgumentHelp("Target address, HOST:PORT (IPv6 as [::1]:80).", valueName: "address"))
        var address: String

        @Option(name: .long, help: ArgumentHelp("New weight, from 0 to 999.", valueName: "weight"))
        var weight: Int?

        @Option(name: .long, help: ArgumentHelp("New availability zone.", valueName: "zone"))
        var zone: String?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try SluiceCtl.Targets.validateGroup(group)
            if let problem = Arguments.addressError(address) { throw ValidationError(problem) }
            if weight == nil && zone == nil { throw ValidationError("nothing to change: give --weight, --zone or both") }
            if let problem = Arguments.zoneError(zone) { throw ValidationError(problem) }
            if let problem = Arguments.weightError(weight) { throw ValidationError(problem) }
        }

        func run() throws {
            let body = try JSON.encode(UpdateRequest(weight: weight, zone: zone))
            let answer = try global.call("PATCH", SluiceCtl.Targets.targetPath(group, address), body: body)
            if global.printJSONIfAsked(answer.body) { return }
            if let target = try? JSON.decode(TargetInfo.self, from: answer.body) {
                print("updated: \(Render.target(target, group: group))")
            } else {
                print("updated: \(address) in \(group)")
            }
        }
    }
}

/// The answer of `GET /v1/target-groups`: a bare array of groups, or an object holding one under
/// `groups` or `target_groups` (accepted alike).
struct GroupList: Decodable {
    var groups: [GroupInfo]

    private enum Keys: String, CodingKey {
        case groups
        case targetGroups = "target_groups"
    }

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var groups: [GroupInfo] = []
            while !array.isAtEnd { groups.append(try array.decode(GroupInfo.self)) }
            self.groups = groups
            return
        }
        let object = try decoder.container(keyedBy: Keys.self)
        if let groups = try object.decodeIfPresent([GroupInfo].self, forKey: .groups) {
            self.groups = groups
        } else {
            self.groups = try object.decode([GroupInfo].self, forKey: .targetGroups)
        }
    }
}
