import SluiceCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `DatagramBatch` over loopback UDP sockets: a batch receive with sender and destination
/// (packet info on a wildcard socket), sends with a prefix, to an address and from a chosen
/// source address, and datagrams of the largest size.
@Suite struct DatagramBatchTests {
    /// A blocking plain UDP socket bound to `host` (port 0), and its address.
    private func plainSocket(_ host: String = "127.0.0.1") throws -> (Int32, SocketAddress) {
        let fd = socket(host.contains(":") ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let a = try #require(SocketAddress(host: host, port: 0))
        var s = a.storage
        let r = withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, a.length) } }
        #expect(r == 0)
        return (fd, try #require(Socket.localAddress(fd)))
    }

    private func sendTo(_ fd: Int32, _ bytes: [UInt8], _ to: SocketAddress) {
        var s = to.storage
        let n = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, to.length) } }
        }
        #expect(n == bytes.count)
    }

    private func receiveFrom(_ fd: Int32) -> ([UInt8], SocketAddress) {
        var buf = [UInt8](repeating: 0, count: 70_000)
        var from = SocketAddress()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buf.withUnsafeMutableBytes { b in
            withUnsafeMutablePointer(to: &from.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) }
            }
        }
        return (n >= 0 ? Array(buf[0..<n]) : [], from)
    }

    @Test func receivesABatchWithSendersAndDestinationsAndAnswersFromTheDestination() throws {
        let batch = try #require(DatagramBatch(capacity: 8))
        let wildcard = try #require(SocketAddress(host: "0.0.0.0", port: 0))
        let server = try Socket.bindDatagram(on: wildcard, reusePort: false)
        defer { close(server) }
        let port = try #require(Socket.localAddress(server)).port
        let (client, clientAddress) = try plainSocket()
        defer { close(client) }
        let to2 = try #require(SocketAddress(host: "127.0.0.2", port: port))
        let to3 = try #require(SocketAddress(host: "127.0.0.3", port: port))
        sendTo(client, [1, 2, 3], to2)
        sendTo(client, [], to3)
        let big = (0..<65_507).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        sendTo(client, big, to2)
        batch.prepareReceive(0..<8, addresses: true)
        var got = 0
        for _ in 0..<500 where got < 3 {  // loopback delivers at once; bounded all the same
            if case .processed(let n) = try batch.receive(server, got..<8) { got += n } else { usleep(2000) }
        }
        #expect(got == 3)
        #expect(Array(batch.payload(0)) == [1, 2, 3] && batch.length(1) == 0 && Array(batch.payload(2)) == big)
        #expect(!batch.isTruncated(2))
        #expect(batch.source(0).description == clientAddress.description)
        #expect(batch.destination(0)?.host == "127.0.0.2" && batch.destination(1)?.host == "127.0.0.3")
        // Answer each from the address it was sent to, with a prefix on the first.
        let prefix = batch.prefix(0)
        prefix[0] = 0xAA
        prefix[1] = 0xBB
        batch.prepareSend(0, length: 3, prefixLength: 2, to: clientAddress, from: batch.destination(0))
        batch.prepareSend(1, length: 0, prefixLength: 0, to: clientAddress, from: batch.destination(1))
        guard case .processed(let sent) = try batch.send(server, 0..<2) else {
            Issue.record("sendmmsg would block")
            return
        }
        #expect(sent == 2)
        let (first, from1) = receiveFrom(client)
        #expect(first == [0xAA, 0xBB, 1, 2, 3] && from1.description == "127.0.0.2:\(port)")
        let (second, from2) = receiveFrom(client)
        #expect(second.isEmpty && from2.description == "127.0.0.3:\(port)")
    }

    @Test func aConnectedSocketSendsWithoutAnAddress() throws {
        let batch = try #require(DatagramBatch(capacity: 4))
        let (target, targetAddress) = try plainSocket("::1")
        defer { close(target) }
        let fd = try Socket.connectedDatagram(to: targetAddress)
        defer { close(fd) }
        let space = batch.buffer(0)
        for i in 0..<65_527 { space[i] = UInt8(truncatingIfNeeded: i) }
        batch.prepareSend(0, length: 65_527, prefixLength: 0, to: nil, from: nil)
        guard case .processed(let sent) = try batch.send(fd, 0..<1) else {
            Issue.record("sendmmsg would block")
            return
        }
        #expect(sent == 1)
        let (got, _) = receiveFrom(target)
        #expect(got.count == 65_527 && got == (0..<65_527).map { UInt8(truncatingIfNeeded: $0) })
    }
}
