// The receiving half of an edge between machines, run as a node by `apus run`. `apus bridge-in`,
// on a machine that reads, stands in for the remote node (its id and outputs), so the local
// consumers' inputs are wired as written. It publishes what arrives on each output's DDS topic
// (written by the remote node, and by its machine's bridge-out when asked) into local shared
// memory, every message once and in order, and asks the bridge-out for what it lacks. It fails
// when the remote side's liveliness is lost (its machine died, or the network stayed cut for
// longer than the lease).
import ApusNetwork
@_spi(Bridge) import ApusNode
import ApusTransport
import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Synchronization

struct BridgeIn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge-in", abstract: "Receives a remote node's outputs over DDS (run as a node by `apus run`).",
        shouldDisplay: false)

    @OptionGroup var bridge: BridgeOptions
    @Option(help: "The machine the remote node runs on, for messages.") var machine: String
    @Option(help: "This machine, which names its credit topics.") var here: String
    @Option(help: "Per output: OUTPUT=all|last:DEPTH.") var topic: [String] = []

    /// Set when the local run stops: the legs go on until their outputs are closed (what was
    /// sent before is still on its way), for at most `drainNanoseconds`.
    final class StopFlag: Sendable {
        let deadline = Atomic<UInt64>(0)
        static let drainNanoseconds: UInt64 = 2_000_000_000

        var isDue: Bool {
            let deadline = deadline.load(ordering: .relaxed)
            return deadline != 0 && monotonicNanoseconds() >= deadline
        }
    }

    /// How long messages the bridge-out says it has taken may be missing here, with none arriving
    /// meanwhile, before they are asked for again: the sending node's own copies are usually on
    /// their way, and a large one takes a while (40 MiB, 0.28 s over a veth link). Asking too
    /// early makes the bridge-out send them again, which only costs the network.
    static let missingGraceNanoseconds: UInt64 = 1_000_000_000
    /// How often, at most, a gap in the numbers (a message surely lost) is asked for.
    static let askIntervalNanoseconds: UInt64 = 200_000_000

    /// A message taken from the topic and kept: one the receive thread could not pass on at once.
    struct Kept {
        var seq: UInt64
        var timestamp: UInt64
        var header: [UInt8]
        var data: [UInt8]

        init(_ message: DDSMessage) {
            seq = message.seq
            timestamp = message.timestamp
            header = Array(message.header)
            data = Array(message.data)
        }

        func withMessage<Result>(_ body: (DDSMessage) throws(DDSError) -> Result) throws(DDSError) -> Result {
            try header.withUnsafeBytes { header in
                data.withUnsafeBytes { data in
                    Swift.Result { () throws(DDSError) in try body(DDSMessage(seq: seq, timestamp: timestamp, header: header, data: data)) }
                }
            }.get()
        }
    }

    /// One output read here. Cyclone's receive thread passes what arrives on at once when that
    /// needs no waiting (`arrived`): the hop then wakes no thread of this process. What would
    /// wait (a consumer's queue under backpressure is full) it leaves to the leg's own thread,
    /// which also asks for what is missing and watches the remote side's liveliness. `lock`
    /// is held by whichever of the two passes messages on, so they go on once and in order.
    final class Leg: @unchecked Sendable {
        let output: String
        let index: Int
        let delivery: DDSDelivery
        /// For `all` delivery: where this machine says how many it has passed on, and asks again.
        let credit: DDSWriter?
        let node: Node
        let machine: String
        /// Set, under `lock`, right after the leg is made.
        var reader: DDSReader!
        let lock = Mutex(())
        /// Signalled when the receive thread left something to the leg's thread.
        let wake = DispatchSemaphore(value: 0)
        /// What the receive thread took but could not pass on without waiting, oldest first.
        var kept: [Kept] = []
        var expected: UInt64 = 0
        /// The send time of the last message passed on, in this machine's clock.
        var stamp: UInt64 = 0
        var dropped: UInt64 = 0
        /// How many times this machine asked for messages again.
        var requests: UInt64 = 0
        var lastRequest: UInt64 = 0
        /// The count the bridge-out said it had, and until when it may be missing here.
        var missing: (count: UInt64, deadline: UInt64)?
        /// The output's end, once said: how many messages it sent, and why its node failed.
        var end: (count: UInt64, failure: String?)?
        var closed = false
        var failure: String?
        /// Set by the leg's thread when it is done: the receive thread leaves the rest alone.
        var finished = false

        init(output: String, index: Int, delivery: DDSDelivery, credit: DDSWriter?, node: Node, machine: String) {
            self.output = output
            self.index = index
            self.delivery = delivery
            self.credit = credit
            self.node = node
            self.machine = machine
        }

        /// Says how many messages were passed on, asking for those from there on again if `asking`.
        func sendCredit(asking: Bool = false) throws(DDSError) {
            guard let credit else { return }
            if asking {
                requests += 1
                lastRequest = monotonicNanoseconds()
            }
            try credit.write(seq: expected, timestamp: requests, header: [], data: [])
        }

        /// Notes that the sender has `count` messages; if some are not here, with none arriving
        /// for the grace period, they are asked for.
        func expect(_ count: UInt64) {
            guard expected < count, missing == nil else { return }
            missing = (count, monotonicNanoseconds() &+ BridgeIn.missingGraceNanoseconds)
        }

        /// Asks for what is still missing once its grace period is over; ends the output when
        /// all it sent is here (or, for `last` delivery, when the grace period is over).
        func checkMissing() throws(DDSError) {
            if let (count, deadline) = missing {
                if expected >= count {
                    missing = nil
                } else if monotonicNanoseconds() >= deadline {
                    missing = nil
                    if credit != nil { try sendCredit(asking: true) }
                    if let end, credit == nil, end.count > expected {
                        dropped += end.count - expected
                        expected = end.count
                    }
                }
            }
            if let end, expected >= end.count {
                closed = true
                failure = end.failure
            }
        }

        /// Handles one message of the topic, holding `lock`: a note, or the next message to pass
        /// on. When passing it on would wait and `waiting` is false, returns false having done
        /// nothing.
        func handle(_ message: DDSMessage, waiting: Bool) throws(DDSError) -> Bool {
            if BridgeMessage.isNote(message.seq) {
                if message.seq == BridgeMessage.closedSequence { end = (message.timestamp, nil) }
                if message.seq == BridgeMessage.failedSequence {
                    let how = String(decoding: message.data, as: UTF8.self)
                    end = (message.timestamp, "node '\(node.id)' failed on machine '\(machine)': \(how)")
                }
                expect(message.timestamp)
                return true
            }
            guard message.seq >= expected else { return true }  // again, or a late copy
            if message.seq > expected, credit != nil {
                // Every message, in order: ask for the missing ones (at most every grace period).
                if monotonicNanoseconds() &- lastRequest >= BridgeIn.askIntervalNanoseconds { try sendCredit(asking: true) }
                return true
            }
            let stamp = BridgeMessage.monotonic(fromWallClock: message.timestamp, notBefore: self.stamp)
            do {
                let metadata = try BridgeMessage.metadata(header: message.header, timestamp: stamp)
                if waiting {
                    try node.send(output, message.data, metadata: metadata)
                } else if try !node.sendWithoutWaiting(output: index, message.data, metadata: metadata) {
                    return false
                }
            } catch {
                throw DDSError("'\(node.id)/\(output)' from machine '\(machine)': \(error)")
            }
            dropped += message.seq - expected
            expected = message.seq + 1
            self.stamp = stamp
            // Progress: what is still missing gets its grace period again.
            if let (count, _) = missing { missing = (count, monotonicNanoseconds() &+ BridgeIn.missingGraceNanoseconds) }
            // Passed on: the sender may go on, a credit message every half of the depth.
            if expected % UInt64(max(1, delivery.depth / 2)) == 0 { try sendCredit() }
            return true
        }

        /// On the thread that delivered data (Cyclone's receive thread): passes on what arrived,
        /// unless that would wait or the leg's thread is at it; then wakes the leg's thread.
        func arrived() {
            let passed = lock.withLockIfAvailable { _ -> Bool in
                guard let reader, kept.isEmpty, !finished, !closed, failure == nil else { return false }
                var noted = false
                do {
                    var taken = 1
                    while taken > 0, kept.isEmpty {
                        taken = try reader.take(timeoutNanoseconds: 0) { (message: DDSMessage) throws(DDSError) in
                            noted = noted || BridgeMessage.isNote(message.seq)
                            if kept.isEmpty, try handle(message, waiting: false) { return }
                            kept.append(Kept(message))
                        }
                    }
                } catch {
                    failure = "\(error)"
                }
                // A note may end the output, and a failure ends the leg: its thread sees to both.
                return kept.isEmpty && failure == nil && !noted
            }
            if passed != true { wake.signal() }
        }

        /// On the leg's thread, holding `lock`: passes on what the receive thread kept, then
        /// whatever is still to take, waiting where a consumer's queue is full.
        func passOnTheRest() throws(DDSError) {
            while !kept.isEmpty {
                let message = kept.removeFirst()
                _ = try message.withMessage { (message: DDSMessage) throws(DDSError) in try handle(message, waiting: true) }
            }
            while try reader.take(
                timeoutNanoseconds: 0, { (message: DDSMessage) throws(DDSError) in _ = try handle(message, waiting: true) })
                > 0
            {}
        }
    }

    func run() throws {
        let node = try Node()
        let participant = try DDSParticipant(domain: bridge.domain)
        let legs = try topic.map(BridgeTopic.init).map { spec in
            guard let index = node.outputIDs.firstIndex(of: spec.id) else {
                throw ValidationError("--topic '\(spec.id)' is not one of this node's outputs")
            }
            let name = BridgeMessage.topic(run: bridge.runID, node: node.id, output: spec.id)
            let credit =
                spec.delivery.keepAll
                ? try DDSWriter(
                    participant, topic: BridgeMessage.creditTopic(run: bridge.runID, node: node.id, output: spec.id, machine: here),
                    delivery: .newest(1)) : nil
            let leg = Leg(output: spec.id, index: index, delivery: spec.delivery, credit: credit, node: node, machine: machine)
            // Data that arrives before `reader` is set finds the lock held, and waits for the leg's thread.
            try leg.lock.withLock { _ throws(DDSError) in
                leg.reader = try DDSReader(participant, topic: name, delivery: spec.delivery) { [weak leg] in leg?.arrived() }
            }
            return leg
        }
        let stopping = StopFlag()
        let group = DispatchGroup()
        for leg in legs {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                receive(leg, stopping: stopping)
            }
        }
        // The local run's STOP ends the legs; so does every leg ending (closed or lost).
        let ended = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            group.wait()
            ended.signal()
        }
        while ended.wait(timeout: .now()) == .timedOut {
            if let event = try node.next(timeout: .milliseconds(100)), case .stop = event {
                if stopping.deadline.load(ordering: .relaxed) == 0 {
                    stopping.deadline.store(monotonicNanoseconds() + StopFlag.drainNanoseconds, ordering: .relaxed)
                }
            }
        }
        for leg in legs where leg.dropped > 0 {
            printError(
                "apus: '\(node.id)/\(leg.output)' from machine '\(machine)': \(leg.dropped) messages dropped on the way (queue_size \(leg.delivery.depth) full, drop_oldest kept the newest)"
            )
        }
        if let failed = legs.first(where: { $0.failure != nil }), let failure = failed.failure {
            printError("apus: \(failure)")
            Foundation.exit(1)
        }
    }

    /// The leg's thread: passes on what the receive thread left, asks for what is missing, and
    /// watches the remote side's liveliness, until the output is closed, the run stops, or the
    /// remote writers' liveliness is lost.
    func receive(_ leg: Leg, stopping: StopFlag) {
        var seenAlive = false
        do {
            // Every message: say when this reader has matched a writer; nothing is sent before.
            if leg.credit != nil {
                while leg.reader.writers.matched == 0, !stopping.isDue { usleep(2_000) }
                try leg.lock.withLock { _ throws(DDSError) in try leg.sendCredit() }
            }
            while !stopping.isDue {
                let over = try leg.lock.withLock { _ throws(DDSError) -> Bool in
                    try leg.passOnTheRest()
                    try leg.checkMissing()
                    if leg.closed || leg.failure != nil { return true }
                    let writers = leg.reader.writers
                    if writers.alive > 0 { seenAlive = true }
                    guard seenAlive, writers.alive == 0 else { return false }
                    // What the writers sent before they went may still be here: the end above all.
                    try leg.passOnTheRest()
                    try leg.checkMissing()
                    if !leg.closed {
                        leg.failure = "machine '\(machine)' lost: '\(leg.node.id)/\(leg.output)' has no live writer (DDS liveliness lost)"
                    }
                    return true
                }
                if over { break }
                _ = leg.wake.wait(timeout: .now() + .nanoseconds(leg.missing == nil ? 100_000_000 : 20_000_000))
            }
            try leg.lock.withLock { _ throws(DDSError) in
                leg.finished = true
                guard leg.closed else { return }
                // The sender may go once everything is passed on: say so, and that it arrived.
                try leg.sendCredit()
            }
            if leg.closed {
                _ = leg.credit?.waitForAcknowledgements(timeoutNanoseconds: 2_000_000_000)
                if leg.failure == nil { try leg.node.closeOutput(leg.output) }
            }
        } catch {
            leg.lock.withLock { _ in
                leg.finished = true
                leg.failure = leg.failure ?? "\(error)"
            }
        }
    }
}
