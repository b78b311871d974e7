// The two halves of an edge between machines, run as nodes on either side. `apus bridge-out`
// takes what a machine's nodes send to other machines and publishes each message once on its
// output's DDS topic, however many machines read it. `apus bridge-in`, on a machine that reads,
// stands in for the remote node (its id and outputs), so the local consumers' inputs are wired as
// written; it publishes what arrives into local shared memory, and fails when the remote side's
// liveliness is lost (its machine died, or the network stayed cut for longer than the lease).
import ApusNetwork
import ApusNode
import ApusTransport
import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Synchronization

/// `ID=all:DEPTH[:MACHINE,...]` or `ID=last:DEPTH[:MACHINE,...]`: a topic's delivery (`all`:
/// none lost, at most DEPTH beyond what every reading machine passed on; `last`: the newest
/// DEPTH) and, for a writer, the machines that read it.
struct BridgeTopic {
    var id: String
    var delivery: DDSDelivery
    var machines: [String]

    init(_ text: String) throws {
        let halves = text.split(separator: "=", maxSplits: 1).map(String.init)
        let parts = halves.count == 2 ? halves[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init) : []
        guard halves.count == 2, !halves[0].isEmpty, parts.count >= 2, parts.count <= 3, ["all", "last"].contains(parts[0]),
            let depth = Int(parts[1]), depth > 0
        else { throw ValidationError("--topic '\(text)': expected ID=all:DEPTH[:MACHINE,...] or ID=last:DEPTH[:MACHINE,...]") }
        id = halves[0]
        delivery = parts[0] == "all" ? .everyMessage(buffered: depth) : .newest(depth)
        machines = parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : []
    }
}

struct BridgeOut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge-out", abstract: "Publishes outputs read on other machines over DDS (run as a node by `apus run`).",
        shouldDisplay: false)

    @Option(name: .customLong("run"), help: "The run's id, which names its topics.") var runID: String
    @Option(help: "The DDS domain.") var domain: UInt32 = 0
    @Option(help: "Per input: INPUT=all|last:DEPTH:MACHINE,...; the input's source names the topic.") var topic: [String] = []
    @Option(help: "Seconds to wait for every reading machine before failing.") var matchTimeout: Double = 30
    @Option(help: "Seconds a reading machine may pass nothing on before the edge fails.") var creditTimeout: Double = 10

    /// One output read on other machines: its writer, and for `all` delivery each reading
    /// machine's credit (how many messages it has passed on).
    final class Leg {
        let writer: DDSWriter
        let spec: BridgeTopic
        let credits: [(machine: String, reader: DDSReader)]
        /// Per reading machine, how many it has passed on; nil until it said it is ready (its
        /// reader has matched this writer: what is written from then on reaches it).
        var credit: [UInt64?]
        var sent: UInt64 = 0

        init(writer: DDSWriter, spec: BridgeTopic, credits: [(machine: String, reader: DDSReader)]) {
            self.writer = writer
            self.spec = spec
            self.credits = credits
            credit = credits.map { _ in nil }
        }

        /// Waits until every reading machine is ready and has passed on all but `depth` of what
        /// was sent.
        func waitForCredit(id: String, timeoutSeconds: Double) throws {
            let depth = UInt64(spec.delivery.depth)
            var lastProgress = monotonicNanoseconds()
            func behind(_ index: Int) -> Bool { BridgeMessage.mustWait(sent: sent, credit: credit[index], depth: depth) }
            while let slowest = credit.indices.first(where: behind) {
                let before = credit[slowest]
                for index in credits.indices {
                    _ = try credits[index].reader.take(timeoutNanoseconds: index == slowest ? 50_000_000 : 0) { message in
                        credit[index] = max(credit[index] ?? 0, message.seq)
                    }
                }
                if credit[slowest] != before {
                    lastProgress = monotonicNanoseconds()
                } else if monotonicNanoseconds() - lastProgress > UInt64(timeoutSeconds * 1e9) {
                    throw DDSError(
                        "bridge-out: machine '\(credits[slowest].machine)' passed nothing of '\(id)' on for \(timeoutSeconds) s (\(credit[slowest].map(String.init) ?? "not ready") of \(sent))"
                    )
                }
            }
        }
    }

    func run() throws {
        let node = try Node()
        let participant = try DDSParticipant(domain: domain)
        var legs: [String: Leg] = [:]
        for spec in try topic.map(BridgeTopic.init) {
            // The input's source, NODE/OUTPUT, names the topic.
            guard let index = node.inputIDs.firstIndex(of: spec.id) else {
                throw ValidationError("--topic '\(spec.id)' is not one of this node's inputs \(node.inputIDs)")
            }
            let parts = node.inputSources[index].split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ValidationError("input '\(spec.id)' comes from \(node.inputSources[index]), not an output")
            }
            let name = BridgeMessage.topic(run: runID, node: parts[0], output: parts[1])
            let credits =
                spec.delivery.keepAll
                ? try spec.machines.map { machine in
                    (
                        machine,
                        try DDSReader(
                            participant, topic: BridgeMessage.creditTopic(run: runID, node: parts[0], output: parts[1], machine: machine),
                            delivery: .newest(1))
                    )
                } : []
            legs[spec.id] = Leg(
                writer: try DDSWriter(participant, topic: name, delivery: spec.delivery), spec: spec, credits: credits)
        }
        // What is written before a reader matched may be lost to it: wait for every reading
        // machine, keeping what comes meanwhile. STOP while inputs are open (the run is stopping)
        // ends the wait: a machine that is not there gets nothing, and what was queued is reported
        // as lost. (STOP once every input closed is the usual end: what came is still sent.)
        let deadline = monotonicNanoseconds() + UInt64(matchTimeout * 1e9)
        var early: [Event] = []
        var closedEarly = Set<String>()
        while let (id, leg) = legs.first(where: { $0.value.writer.matchedReaders < $0.value.spec.machines.count }) {
            guard monotonicNanoseconds() < deadline else {
                throw DDSError(
                    "bridge-out: '\(id)' has \(leg.writer.matchedReaders) of \(leg.spec.machines.count) reading machines (\(leg.spec.machines.joined(separator: ", "))) after \(matchTimeout) s"
                )
            }
            guard let event = try node.next(timeout: .milliseconds(5)) else { continue }
            switch event {
            case .inputClosed(let id): closedEarly.insert(id)
            case .nodeFailed(let failure): closedEarly.formUnion(failure.inputs)
            case .stop where !closedEarly.isSuperset(of: legs.keys): return
            default: break
            }
            early.append(event)
        }
        var open = Set(legs.keys)
        var pending = early[...]
        while !open.isEmpty, let event = try pending.popFirst() ?? node.next() {
            switch event {
            case .input(let input):
                guard let leg = legs[input.id] else { continue }
                try leg.waitForCredit(id: input.id, timeoutSeconds: creditTimeout)
                let header = BridgeMessage.header(input.metadata)
                try header.withUnsafeBytes { header in
                    try leg.writer.write(
                        seq: leg.sent, timestamp: BridgeMessage.wallClock(fromMonotonic: input.metadata.timestamp), header: header,
                        data: input.bytes)
                }
                leg.sent += 1
                input.release()
            case .inputClosed(let id):
                open.remove(id)
                try legs[id]?.writer.write(
                    seq: BridgeMessage.closedSequence, timestamp: 0, header: UnsafeRawBufferPointer(start: nil, count: 0),
                    data: UnsafeRawBufferPointer(start: nil, count: 0))
            case .nodeFailed(let failure):
                // The reading machines' stand-ins fail the same way, naming this machine.
                for id in failure.inputs {
                    open.remove(id)
                    try legs[id]?.writer.write(
                        seq: BridgeMessage.failedSequence, timestamp: 0, header: [], data: Array(failure.message.utf8))
                }
            case .error(let text):
                printError("bridge-out: \(text)")
            case .stop:
                continue
            }
        }
        // A reliable message is resent until acknowledged: stay until the readers have it all.
        for (id, leg) in legs where !leg.writer.waitForAcknowledgements(timeoutNanoseconds: 10_000_000_000) {
            printError("bridge-out: '\(id)': not every reading machine acknowledged what was sent within 10 s")
        }
    }
}

struct BridgeIn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge-in", abstract: "Receives a remote node's outputs over DDS (run as a node by `apus run`).",
        shouldDisplay: false)

    @Option(name: .customLong("run"), help: "The run's id, which names its topics.") var runID: String
    @Option(help: "The DDS domain.") var domain: UInt32 = 0
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

    /// What one output's reader saw, kept by its thread.
    final class Leg: @unchecked Sendable {
        let output: String
        let reader: DDSReader
        let delivery: DDSDelivery
        /// For `all` delivery: where this machine says how many it has passed on.
        let credit: DDSWriter?
        var expected: UInt64 = 0
        /// The send time of the last message passed on, in this machine's clock.
        var stamp: UInt64 = 0
        var dropped: UInt64 = 0
        var closed = false
        var failure: String?

        init(output: String, reader: DDSReader, delivery: DDSDelivery, credit: DDSWriter?) {
            self.output = output
            self.reader = reader
            self.delivery = delivery
            self.credit = credit
        }
    }

    func run() throws {
        let node = try Node()
        let participant = try DDSParticipant(domain: domain)
        let legs = try topic.map(BridgeTopic.init).map { spec in
            guard node.outputIDs.contains(spec.id) else { throw ValidationError("--topic '\(spec.id)' is not one of this node's outputs") }
            let name = BridgeMessage.topic(run: runID, node: node.id, output: spec.id)
            let credit =
                spec.delivery.keepAll
                ? try DDSWriter(
                    participant, topic: BridgeMessage.creditTopic(run: runID, node: node.id, output: spec.id, machine: here),
                    delivery: .newest(1)) : nil
            return Leg(
                output: spec.id, reader: try DDSReader(participant, topic: name, delivery: spec.delivery), delivery: spec.delivery,
                credit: credit)
        }
        let stopping = StopFlag()
        let group = DispatchGroup()
        for leg in legs {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                receive(leg, node: node, stopping: stopping)
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

    /// Takes `leg`'s messages and sends them on, until its output is closed, the run stops, or
    /// the remote writer's liveliness is lost.
    func receive(_ leg: Leg, node: Node, stopping: StopFlag) {
        var seenAlive = false
        do {
            // Every message: say when this reader has matched the writer; it sends nothing before.
            if let credit = leg.credit {
                while leg.reader.writers.matched == 0, !stopping.isDue { usleep(2_000) }
                try credit.write(seq: 0, timestamp: 0, header: [], data: [])
            }
            func takeAndSend(waiting nanoseconds: Int64) throws {
                _ = try leg.reader.take(timeoutNanoseconds: nanoseconds) { (message: DDSMessage) throws(DDSError) in
                    if message.seq == BridgeMessage.closedSequence {
                        leg.closed = true
                        return
                    }
                    if message.seq == BridgeMessage.failedSequence {
                        leg.failure = "node '\(node.id)' failed on machine '\(machine)': \(String(decoding: message.data, as: UTF8.self))"
                        leg.closed = true
                        return
                    }
                    guard message.seq >= leg.expected else { return }  // again, to a reader that matched late
                    if message.seq > leg.expected { leg.dropped += message.seq - leg.expected }
                    leg.expected = message.seq + 1
                    do {
                        leg.stamp = BridgeMessage.monotonic(fromWallClock: message.timestamp, notBefore: leg.stamp)
                        let metadata = try BridgeMessage.metadata(header: message.header, timestamp: leg.stamp)
                        try node.send(leg.output, message.data, metadata: metadata)
                    } catch {
                        throw DDSError("'\(node.id)/\(leg.output)' from machine '\(machine)': \(error)")
                    }
                    // Passed on: the sender may go on, a credit message every half of the depth.
                    if let credit = leg.credit, leg.expected % UInt64(max(1, leg.delivery.depth / 2)) == 0 {
                        try credit.write(
                            seq: leg.expected, timestamp: 0, header: UnsafeRawBufferPointer(start: nil, count: 0),
                            data: UnsafeRawBufferPointer(start: nil, count: 0))
                    }
                }
            }
            while !leg.closed, !stopping.isDue {
                try takeAndSend(waiting: 100_000_000)
                let writers = leg.reader.writers
                if writers.alive > 0 { seenAlive = true }
                guard seenAlive, writers.alive == 0, !leg.closed else { continue }
                // What the writer sent before it went may still be here: its end above all.
                try takeAndSend(waiting: 0)
                if !leg.closed {
                    leg.failure = "machine '\(machine)' lost: '\(node.id)/\(leg.output)' has no live writer (DDS liveliness lost)"
                    return
                }
            }
            if leg.closed, leg.failure == nil { try node.closeOutput(leg.output) }
        } catch {
            leg.failure = "\(error)"
        }
    }
}
