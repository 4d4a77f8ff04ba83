/// `max_per_target:` and `surge_queue: {size, timeout}` of a target group (SPEC §12).
extension ConfigBuilder {
    /// Both keys, with their defaults (0 = unlimited, no queue); `nil` after an error. UDP
    /// flows have neither: a udp group refuses them (a tcp_udp group applies them to its TCP
    /// connections).
    mutating func surge(in group: YAMLMapping, protocolKind: ProtocolKind?) -> (Int, SurgeQueueConfig)? {
        let before = reader.errors.count
        var maxPerTarget = 0
        var queue = SurgeQueueConfig()
        let range = SurgeQueueConfig.sizes
        if let value = group["max_per_target"] {
            if protocolKind == .udp {
                reader.error("max_per_target is not supported on udp groups (UDP flows are not limited per target)",
                             at: value)
            } else if let n = reader.int(value, in: range,
                                         expected: "a count from \(range.lowerBound) (unlimited) to \(range.upperBound)") {
                maxPerTarget = n
            }
        }
        if let value = group["surge_queue"] {
            if protocolKind == .udp {
                reader.error("surge_queue is not supported on udp groups (datagrams are never queued)", at: value)
            } else if let mapping = reader.mapping(value, supported: Schema.surgeQueueKeys,
                                                   expected: "a mapping with size and timeout") {
                if let size = mapping["size"],
                   let n = reader.int(size, in: range,
                                      expected: "a queue size from \(range.lowerBound) (off) to \(range.upperBound)") {
                    queue.size = n
                }
                if let timeout = mapping["timeout"], let nanos = reader.duration(timeout) {
                    if SurgeQueueConfig.timeouts.contains(nanos) {
                        queue.timeout = nanos
                    } else {
                        reader.error("expected a duration from 1ms to 1h, got \(reader.describe(timeout.node))", at: timeout)
                    }
                }
            }
        }
        return reader.errors.count == before ? (maxPerTarget, queue) : nil
    }
}
