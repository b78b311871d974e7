import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable @_spi(Bridge) import ApusNode

/// The daemon's half of a node's life, played in-process over a real control socket and real
/// shared memory: the node's output `out` feeds its own input `in` (backpressure, so nothing is
/// lost), and its output `other` feeds nobody. The daemon thread relays the node's pools back
/// to it, answers `ready` with `start`, and records what else it is sent.
final class LoopbackDaemon: @unchecked Sendable {
    let inbox: Inbox
    private let daemonEnd: ControlChannel
    private let nodeEnd: ControlChannel
    private let finished = DispatchSemaphore(value: 0)
    /// Messages other than hello, pool and ready, in arrival order.
    let received = Mutex<[NodeMessage]>([])

    init() throws {
        (daemonEnd, nodeEnd) = try ControlChannel.pair()
        inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 64, policy: .backpressure)]), name: "loopback")
        let setup = NodeSetup(
            node: "loop", producer: 0,
            inputs: [.init(id: "in", source: "loop/out", kind: .stream(producer: 0, producerNode: "loop", ring: 0, bit: 1))],
            inbox: inbox.layout,
            outputs: [.init(id: "out", edges: [.init(peer: 0, ring: 0, bit: 1)]), .init(id: "other", edges: [])],
            peerInboxes: [inbox.layout], pool: PoolLayout(slotCount: 80, payloadCapacity: 256, holderWords: 1),
            largeSlotCount: 4, maxSampleSize: 1 << 20, firstPoolIndex: 0, backpressureTimeoutNanoseconds: 5_000_000_000)
        Thread.detachNewThread { [self] in
            defer { finished.signal() }
            while let (message, fds) = try? daemonEnd.receiveMessage() {
                defer { for fd in fds { close(fd) } }
                switch message {
                case .hello:
                    try? daemonEnd.send(.setup(setup), fds: [inbox.segment.fd, inbox.segment.fd])
                case .pool(let producer, let index, let layout):
                    try? daemonEnd.send(.pool(producer: producer, index: index, layout: layout), fds: fds)
                    inbox.postControl()
                case .ready:
                    try? daemonEnd.send(.start)
                default:
                    received.withLock { $0.append(message) }
                }
            }
        }
    }

    /// Joins as the node; returns once the start barrier is passed.
    func join() throws -> Node {
        try Node(id: "loop", channel: nodeEnd)
    }

    /// Sends STOP as the daemon does: the message, then a notice through the doorbell.
    func stop() throws {
        try daemonEnd.send(.stop)
        inbox.postControl()
    }

    func shutDown() {
        shutdown(daemonEnd.fd, Int32(SHUT_RDWR))
        finished.wait()
    }
}

@Suite(.serialized) struct NodeThreadTests {
    /// apus.h allows send and close_output from different threads at once, while a third waits
    /// in next: every message arrives once and in order per sender, and the daemon gets the
    /// closing whole.
    @Test func twoSendersAndACloserWhileAThirdThreadReceives() throws {
        let daemon = try LoopbackDaemon()
        defer { daemon.shutDown() }
        let node = try daemon.join()
        let perSender = 2000
        let senders = DispatchGroup()
        for sender in 0..<2 {
            senders.enter()
            Thread.detachNewThread {
                defer { senders.leave() }
                for seq in 0..<perSender {
                    try? node.send("out", [Int64(sender), Int64(seq)])
                    if sender == 1, seq == perSender / 2 { try? node.closeOutput("other") }
                }
            }
        }
        var next = [0, 0]
        var disorder = 0
        while next[0] + next[1] < 2 * perSender {
            guard case .input(let input) = try #require(try node.next(timeout: .seconds(10))) else { continue }
            let values = input.array(of: Int64.self) ?? []
            guard values.count == 2 else {
                disorder += 1
                continue
            }
            let (sender, seq) = (Int(values[0]), Int(values[1]))
            if seq != next[sender] { disorder += 1 }
            next[sender] = seq + 1
        }
        senders.wait()
        #expect(disorder == 0)
        #expect(next == [perSender, perSender])
        #expect(daemon.received.withLock { $0 } == [.closeOutput(1)])
    }

    /// A sending thread that reads the STOP off the control socket must still wake the thread
    /// waiting in next() with no timeout.
    @Test func stopWakesAReceiverWithNoTimeoutWhileAnotherThreadSends() throws {
        let daemon = try LoopbackDaemon()
        defer { daemon.shutDown() }
        let node = try daemon.join()
        let running = Atomic<Bool>(true)
        let sent = Atomic<Int>(0)
        Thread.detachNewThread {
            // Sends on the output nobody reads, so the receiver has nothing but control to wake for.
            while running.load(ordering: .relaxed) {
                try? node.send("other", [UInt8(1)])
                sent.add(1, ordering: .relaxed)
            }
        }
        defer { running.store(false, ordering: .relaxed) }
        while sent.load(ordering: .relaxed) < 1000 { usleep(1000) }
        let woke = DispatchSemaphore(value: 0)
        let event = Mutex<Event?>(nil)
        Thread.detachNewThread {
            let received = try? node.next()
            event.withLock { $0 = received }
            woke.signal()
        }
        usleep(100_000)  // the receiver is asleep in next() by now
        try daemon.stop()
        #expect(woke.wait(timeout: .now() + 5) == .success, "the waiting thread never saw STOP")
        #expect(event.withLock { $0?.isStop } == true)
    }

    /// The stand-in of a remote node sends from Cyclone's receive thread, which must never wait:
    /// `sendWithoutWaiting` sends while the consumer's backpressure queue has room, and once it
    /// is full says so, having sent nothing, until the consumer takes one.
    @Test func sendingWithoutWaitingStopsAtAFullQueueAndSendsNothingThere() throws {
        let daemon = try LoopbackDaemon()
        defer { daemon.shutDown() }
        let node = try daemon.join()
        func send(_ value: Int64) throws -> Bool {
            try withUnsafeBytes(of: value) { bytes in
                Result { () throws(NodeError) in try node.sendWithoutWaiting(output: 0, bytes, metadata: Metadata()) }
            }.get()
        }
        // Control the daemon posted (the pools) is read by a sender that may wait: until then
        // the sender that must not wait leaves the message to it.
        try node.send("other", [UInt8(0)])
        for value in 0..<64 { #expect(try send(Int64(value)), "message \(value) of a queue of 64") }
        #expect(try !send(64), "the queue of 64 is full")
        #expect(
            try withUnsafeBytes(of: Int64(0)) { bytes in
                Result { () throws(NodeError) in try node.sendWithoutWaiting(output: 1, bytes, metadata: Metadata()) }
            }.get(), "an output nobody reads never waits")
        var received: [Int64] = []
        guard case .input(let first) = try #require(try node.next(timeout: .seconds(5))) else {
            Issue.record("no input")
            return
        }
        received.append(first.bytes.load(as: Int64.self))
        first.release()
        #expect(try send(65), "one taken makes room for one")
        while let event = try node.next(timeout: .milliseconds(200)), case .input(let input) = event {
            received.append(input.bytes.load(as: Int64.self))
            input.release()
        }
        #expect(received == Array(0..<64) + [65])
        try node.closeOutput("out")
        #expect(throws: NodeError.self) { try send(66) }
        try daemon.stop()
    }
}
