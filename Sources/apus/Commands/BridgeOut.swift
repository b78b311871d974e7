// The sending half of an edge between machines, run as a node by `apus run`. The node that sends
// an output read on other machines writes each message to the output's DDS topic itself
// (ApusNode's RemoteOutputs). `apus bridge-out` takes every such message too, from its own inbox:
// their order there numbers them on the topic. For an output read with every message it keeps
// each one until every reading machine has passed it on, which bounds how far the sender runs
// ahead (credits), and sends again what a reading machine asks for: what the sender wrote just
// before it crashed, or before a reader had found it. From the first such request on, it sends
// every message of that output itself. It says how many messages it has taken, so a reading
// machine knows what it lacks, and says when an output closed or its node failed.
import ApusNetwork
import ApusNode
import ApusTransport
import ArgumentParser
import Foundation
import Glibc

struct BridgeOut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge-out", abstract: "Publishes outputs read on other machines over DDS (run as a node by `apus run`).",
        shouldDisplay: false)

    @OptionGroup var bridge: BridgeOptions
    @Option(help: "Per input: INPUT=all|last:DEPTH:MACHINE,...; the input's source names the topic.") var topic: [String] = []
    @Option(help: "Seconds to wait for every reading machine before failing.") var matchTimeout: Double = 30
    @Option(help: "Seconds a reading machine may pass nothing on before the edge fails.") var creditTimeout: Double = 10

    /// How often, at most, a leg says how many messages it has taken.
    static let noteIntervalNanoseconds: UInt64 = 100_000_000

    /// One output read on other machines: its writer, and for `all` delivery each reading
    /// machine's credit (how many messages it has passed on) and the messages it has not.
    final class Leg {
        let writer: DDSWriter
        let spec: BridgeTopic
        let credits: [(machine: String, reader: DDSReader)]
        /// Per reading machine, how many it has passed on; nil until it said it is ready (its
        /// reader has matched this writer: what is written from then on reaches it).
        var credit: [UInt64?]
        /// Per reading machine, how many times it has asked for messages again.
        var requests: [UInt64]
        /// Messages taken: the number the next one has on the topic.
        var taken: UInt64 = 0
        /// What some reading machine has not passed on yet, oldest first.
        var held: [(seq: UInt64, input: Input)] = []
        /// Set by the first request: this leg sends every message itself from then on.
        var forwarding = false
        var noted: UInt64 = 0
        var notedAt: UInt64 = 0

        init(writer: DDSWriter, spec: BridgeTopic, credits: [(machine: String, reader: DDSReader)]) {
            self.writer = writer
            self.spec = spec
            self.credits = credits
            credit = credits.map { _ in nil }
            requests = credits.map { _ in 0 }
        }

        /// Takes what the reading machines said, waiting up to `timeout` for machine `waitingFor`:
        /// records credits, sends again what a new request asks for, and lets go of what every
        /// machine has passed on.
        func takeCredits(waitingFor slowest: Int? = nil, timeoutNanoseconds: Int64 = 0) throws(DDSError) {
            for index in credits.indices {
                _ = try credits[index].reader.take(timeoutNanoseconds: index == slowest ? timeoutNanoseconds : 0) {
                    (message: DDSMessage) throws(DDSError) in
                    credit[index] = max(credit[index] ?? 0, message.seq)
                    if message.timestamp > requests[index] {
                        requests[index] = message.timestamp
                        try resend(from: message.seq)
                    }
                }
            }
            guard !held.isEmpty, credit.allSatisfy({ $0 != nil }) else { return }
            let passed = credit.compactMap { $0 }.min() ?? 0
            let done = held.prefix { $0.seq < passed }.count
            for (_, input) in held.prefix(done) { input.release() }
            held.removeFirst(done)
        }

        /// Waits until every reading machine is ready and has passed on all but `depth` of what
        /// was taken.
        func waitForCredit(id: String, timeoutSeconds: Double) throws {
            let depth = UInt64(spec.delivery.depth)
            if let stuck = try waitWhile({ BridgeMessage.mustWait(sent: taken, credit: credit[$0], depth: depth) }, timeoutSeconds) {
                throw DDSError(
                    "bridge-out: machine '\(credits[stuck].machine)' passed nothing of '\(id)' on for \(timeoutSeconds) s (\(credit[stuck].map(String.init) ?? "not ready") of \(taken))"
                )
            }
        }

        /// Takes credits while `behind` holds for some reading machine; returns one that made no
        /// progress for `timeoutSeconds`, or nil once none is behind.
        func waitWhile(_ behind: (Int) -> Bool, _ timeoutSeconds: Double) throws(DDSError) -> Int? {
            var lastProgress = monotonicNanoseconds()
            while let slowest = credit.indices.first(where: behind) {
                let before = credit[slowest]
                try takeCredits(waitingFor: slowest, timeoutNanoseconds: 50_000_000)
                if credit[slowest] != before {
                    lastProgress = monotonicNanoseconds()
                } else if monotonicNanoseconds() - lastProgress > UInt64(timeoutSeconds * 1e9) {
                    return slowest
                }
            }
            return nil
        }

        /// Takes the next message: numbers it, sends it if this leg forwards, and keeps it until
        /// passed on (`all` delivery).
        func take(_ input: Input) throws(DDSError) {
            let seq = taken
            taken += 1
            if forwarding { try send(seq, input) }
            if spec.delivery.keepAll { held.append((seq, input)) } else { input.release() }
        }

        func resend(from seq: UInt64) throws(DDSError) {
            forwarding = true
            for (held, input) in held where held >= seq { try send(held, input) }
        }

        func send(_ seq: UInt64, _ input: Input) throws(DDSError) {
            let timestamp = BridgeMessage.wallClock(fromMonotonic: input.metadata.timestamp)
            try writer.write(seq: seq, timestamp: timestamp, metadata: input.metadata, payload: input.bytes)
        }

        /// Says how many messages were taken, at most every `noteIntervalNanoseconds`, when more were.
        func noteIfDue() throws(DDSError) {
            let now = monotonicNanoseconds()
            guard spec.delivery.keepAll, taken != noted, now &- notedAt >= BridgeOut.noteIntervalNanoseconds else { return }
            try note(BridgeMessage.takenSequence)
            notedAt = now
        }

        /// Ends the output with note `seq` (closed, failed). The node's own copies of what no
        /// reading machine has passed on yet may have died with it (unacknowledged when it
        /// exited): this writer sends them again first, so the stand-ins have them, in order,
        /// before the note. Those that arrived already are dropped there by number.
        func end(_ seq: UInt64, _ text: String = "") throws(DDSError) {
            for (held, input) in held { try send(held, input) }
            try note(seq, text)
        }

        /// One of the notes (taken, closed, failed), with the count of messages taken.
        func note(_ seq: UInt64, _ text: String = "") throws(DDSError) {
            noted = taken
            try writer.write(seq: seq, timestamp: taken, header: [], data: Array(text.utf8))
        }

        /// After the end: waits until every reading machine has passed everything on (or is
        /// gone), sending again what one asks for; false if one went silent for `timeoutSeconds`.
        func drain(timeoutSeconds: Double) throws(DDSError) -> Bool {
            try waitWhile({ (credit[$0] ?? 0) < taken && credits[$0].reader.writers.matched > 0 }, timeoutSeconds) == nil
        }
    }

    func run() throws {
        let node = try Node()
        let participant = try DDSParticipant(domain: bridge.domain)
        var legs: [String: Leg] = [:]
        for spec in try topic.map({ text in try BridgeTopic(text) }) {
            // The input's source, NODE/OUTPUT, names the topic.
            guard let index = node.inputIDs.firstIndex(of: spec.id) else {
                throw ValidationError("--topic '\(spec.id)' is not one of this node's inputs \(node.inputIDs)")
            }
            let parts = node.inputSources[index].split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ValidationError("input '\(spec.id)' comes from \(node.inputSources[index]), not an output")
            }
            let name = BridgeMessage.topic(run: bridge.runID, node: parts[0], output: parts[1])
            let credits =
                spec.delivery.keepAll
                ? try spec.machines.map { machine in
                    (
                        machine,
                        try DDSReader(
                            participant,
                            topic: BridgeMessage.creditTopic(run: bridge.runID, node: parts[0], output: parts[1], machine: machine),
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
        while !open.isEmpty {
            for leg in legs.values {
                try leg.takeCredits()
                try leg.noteIfDue()
            }
            guard let event = try pending.popFirst() ?? node.next(timeout: .milliseconds(100)) else { continue }
            switch event {
            case .input(let input):
                guard let leg = legs[input.id] else { continue }
                try leg.waitForCredit(id: input.id, timeoutSeconds: creditTimeout)
                try leg.take(input)
            case .inputClosed(let id):
                open.remove(id)
                try legs[id]?.end(BridgeMessage.closedSequence)
            case .nodeFailed(let failure):
                // The reading machines' stand-ins fail the same way, naming this machine.
                for id in failure.inputs {
                    open.remove(id)
                    try legs[id]?.end(BridgeMessage.failedSequence, failure.message)
                }
            case .error(let text):
                printError("bridge-out: \(text)")
            case .stop:
                continue
            }
        }
        // A reading machine may still lack some messages, written by their node just before it ended.
        for (id, leg) in legs where !(try leg.drain(timeoutSeconds: creditTimeout)) {
            printError("bridge-out: '\(id)': a reading machine passed nothing on for \(creditTimeout) s after the output ended")
        }
        // A reliable message is resent until acknowledged: stay until the readers have it all.
        for (id, leg) in legs where !leg.writer.waitForAcknowledgements(timeoutNanoseconds: 10_000_000_000) {
            printError("bridge-out: '\(id)': not every reading machine acknowledged what was sent within 10 s")
        }
    }
}
