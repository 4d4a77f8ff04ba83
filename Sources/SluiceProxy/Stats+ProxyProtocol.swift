/// PROXY protocol counters of `accept_proxy_protocol` listeners, for the metrics endpoint.
extension StatsBlock {
    /// Headers read, and connections closed for an invalid header or one not complete in time.
    public func proxyHeaders(listener l: Int) -> (accepted: UInt64, invalid: UInt64, timeout: UInt64) {
        (load(StatsBlock.listenerSlot(l, StatsBlock.proxyAccepted)), load(StatsBlock.listenerSlot(l, StatsBlock.proxyInvalid)),
         load(StatsBlock.listenerSlot(l, StatsBlock.proxyTimeout)))
    }
}
