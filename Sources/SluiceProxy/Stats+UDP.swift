/// Reading the UDP counters (`sluice_udp_datagrams_total`, the `udp_*` kinds of
/// `sluice_errors_total`) of one worker.
extension StatsBlock {
    /// Datagrams received from clients and sent to clients on listener `l`.
    public func udpDatagrams(listener l: Int) -> (incoming: UInt64, outgoing: UInt64) {
        guard l >= 0, l < StatsBlock.maxListeners else { return (0, 0) }
        return (load(StatsBlock.listenerSlot(l, StatsBlock.udpDatagramsIn)),
                load(StatsBlock.listenerSlot(l, StatsBlock.udpDatagramsOut)))
    }

    /// Datagrams of new clients dropped because listener `l`'s flow table was full.
    public func udpFlowsFull(listener l: Int) -> UInt64 {
        guard l >= 0, l < StatsBlock.maxListeners else { return 0 }
        return load(StatsBlock.listenerSlot(l, StatsBlock.udpFlowsFull))
    }

    /// Datagrams dropped on listener `l` for want of a usable target or by a failed send.
    public func udpDropped(listener l: Int) -> UInt64 {
        guard l >= 0, l < StatsBlock.maxListeners else { return 0 }
        return load(StatsBlock.listenerSlot(l, StatsBlock.udpDropped))
    }
}
