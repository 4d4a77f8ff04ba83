import ArgumentParser
import Foundation
import SluiceControl

extension SluiceCtl {
    /// `sluicectl scale GROUP N`: manual scaling of a managed group (SPEC §11).
    struct Scale: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the desired target count of a managed group.",
            discussion: """
                Sets GROUP's desired count; sluiced then launches or terminates targets through the \
                group's hooks until the group has that many. A count outside the group's min..max is \
                refused (exit 1). In a fleet, run it on the node that leads scaling.

                Example:
                  sluicectl scale app 6
                """)

        @Argument(help: ArgumentHelp("Managed target group.", valueName: "group"))
        var group: String

        @Argument(help: ArgumentHelp("Desired number of targets.", valueName: "n"))
        var desired: Int

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            try SluiceCtl.Targets.validateGroup(group)
            if desired < 0 { throw ValidationError("N must be 0 or more") }
        }

        func run() throws {
            let body = try JSON.encode(ScaleRequest(desired: desired))
            let answer = try global.call("PUT", SluiceCtl.Scaling.path(group), body: body)
            if global.printJSONIfAsked(answer.body) { return }
            let info = try decodeAnswer(ScalingInfo.self, answer.body, socket: global.socketPath)
            print("\(info.group): desired \(info.desired) (actual \(info.actual), min \(info.min), max \(info.max))")
        }
    }

    /// `sluicectl scaling [GROUP]`: managed groups with their counts and last activities.
    struct Scaling: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show managed groups: desired, actual, min, max and recent scaling activities.",
            discussion: """
                Without GROUP, every managed group (a group with a scaling block) and its last \
                activities; with GROUP, that group and up to --last activities.
                """)

        @Argument(help: ArgumentHelp("Only this managed group.", valueName: "group"))
        var group: String?

        @Option(name: .long, help: "Activities to show per group (newest last).")
        var last = 10

        @OptionGroup var global: GlobalOptions

        static func path(_ group: String) -> String { "/v1/target-groups/\(Arguments.pathSegment(group))/scaling" }

        func validate() throws {
            if let group { try SluiceCtl.Targets.validateGroup(group) }
            if last < 0 { throw ValidationError("--last must be 0 or more") }
        }

        func run() throws {
            let answer = try global.call("GET", group.map(Self.path) ?? "/v1/scaling")
            if global.printJSONIfAsked(answer.body) { return }
            let groups: [ScalingInfo]
            if group != nil {
                groups = [try decodeAnswer(ScalingInfo.self, answer.body, socket: global.socketPath)]
            } else {
                groups = try decodeAnswer(ScalingGroupsInfo.self, answer.body, socket: global.socketPath).groups
            }
            print(Self.render(groups, last: last), terminator: "")
        }

        /// A table of counts, then each group's last activities.
        static func render(_ groups: [ScalingInfo], last: Int) -> String {
            var counts = Table([("GROUP", .left), ("DESIRED", .right), ("ACTUAL", .right), ("MIN", .right), ("MAX", .right)])
            for g in groups {
                counts.append([g.group.replacingNewlines(), String(g.desired), String(g.actual), String(g.min), String(g.max)])
            }
            var out = counts.render()
            for g in groups where !g.activities.isEmpty && last > 0 {
                out += "\nActivities of \(g.group.replacingNewlines()):\n"
                var table = Table([("STARTED", .left), ("RESULT", .left), ("CAUSE", .left), ("TARGET", .left), ("MESSAGE", .left)])
                for a in g.activities.suffix(last) {
                    table.append([a.startTime.replacingNewlines(), a.result.replacingNewlines(), a.cause.replacingNewlines(),
                                  (a.target ?? "-").replacingNewlines(), (a.message ?? a.description).replacingNewlines()])
                }
                out += table.render()
            }
            return out
        }
    }
}
