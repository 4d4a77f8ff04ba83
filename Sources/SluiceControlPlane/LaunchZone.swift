/// The zone a launch asks for (`SLUICE_ZONE`, SPEC §11): the one with the fewest
/// (non-draining) targets among the node's zone, the zones of the group's targets and, in a
/// fleet, the zones of live nodes; ties go to the node's zone, then to name order.
public enum LaunchZone {
    public static func pick(nodeZone: String, targetZones: [String], nodeZones: [String] = []) -> String {
        var counts: [String: Int] = [nodeZone: 0]
        for z in nodeZones where counts[z] == nil { counts[z] = 0 }
        for z in targetZones { counts[z, default: 0] += 1 }
        let fewest = counts.values.min() ?? 0
        if counts[nodeZone] == fewest { return nodeZone }
        return counts.filter { $0.value == fewest }.keys.min() ?? nodeZone
    }
}
