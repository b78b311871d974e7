// Outputs read on other machines. The sending process writes each of their messages to the
// output's DDS topic itself, right after publishing it in shared memory: the hop across machines
// then wakes one process fewer than going through the bridge-out. The bridge-out still takes
// every message from its own ring, whose position numbers them on the topic (it lives in the
// bridge's inbox, so the numbers go on across restarts of this node). It keeps each message
// until every reading machine has passed it on, and sends again what one of them lacks: what was
// written just before a crash, or before a reader had found this process.
import ApusNetwork
import ApusTransport
import Glibc

final class RemoteOutputs {
    final class Output {
        let topic: BridgeTopic
        let writer: DDSWriter
        /// The bridge-out's ring of this output: its count of messages is the next one's number.
        let ring: InputRing
        /// Whether every reading machine has found this writer (waited for before the first message).
        var matched = false
        /// Set when a write failed: the bridge-out carries this output from then on.
        var failed = false

        init(topic: BridgeTopic, writer: DDSWriter, ring: InputRing) {
            self.topic = topic
            self.writer = writer
            self.ring = ring
        }
    }

    let participant: DDSParticipant
    /// By output index; nil for outputs read only on this machine.
    let outputs: [Output?]
    /// How long the first message waits for every reading machine to find this process.
    static let matchTimeoutNanoseconds: UInt64 = 10_000_000_000

    /// The outputs `variable` names, writing through the bridge-out's rings among `edges` (per
    /// output, its consumers' rings).
    init(_ variable: RemoteOutputsVariable, node: String, outputIDs: [String], edges: [[(consumer: String, ring: InputRing)]])
        throws(DDSError)
    {
        participant = try DDSParticipant(domain: variable.domain)
        var outputs: [Output?] = Array(repeating: nil, count: outputIDs.count)
        for topic in variable.topics {
            guard let index = outputIDs.firstIndex(of: topic.id) else {
                throw DDSError("\(RemoteOutputsVariable.name) names '\(topic.id)', not one of the outputs \(outputIDs)")
            }
            guard let ring = edges[index].first(where: { $0.consumer == variable.bridge })?.ring else {
                throw DDSError("output '\(topic.id)' has no edge to '\(variable.bridge)'")
            }
            let writer = try DDSWriter(
                participant, topic: BridgeMessage.topic(run: variable.run, node: node, output: topic.id), delivery: topic.delivery)
            outputs[index] = Output(topic: topic, writer: writer, ring: ring)
        }
        self.outputs = outputs
    }

    /// The number the next message on `output` gets, when the output is read on other machines.
    @inline(__always) func position(_ output: Int) -> UInt64? {
        guard let remote = outputs[output], !remote.failed else { return nil }
        return remote.ring.enqueued
    }

    /// Writes the message that was just published on `output` as number `position`, if it reached
    /// the bridge-out's ring (the bridge-out has it: it sends it again if this write is lost).
    func write(output: Int, position: UInt64, payload: UnsafeRawBufferPointer, metadata: SampleMetadata) {
        guard let remote = outputs[output], remote.ring.enqueued > position else { return }
        if !remote.matched {
            let deadline = monotonicNanoseconds() &+ Self.matchTimeoutNanoseconds
            while remote.writer.matchedReaders < remote.topic.machines.count, monotonicNanoseconds() < deadline { usleep(1_000) }
            remote.matched = true
        }
        do {
            try remote.writer.write(seq: position, timestamp: wallClockNanoseconds(), metadata: metadata, payload: payload)
        } catch {
            remote.failed = true
            _ = writeAll(STDERR_FILENO, "apus: output '\(remote.topic.id)': \(error); the bridge sends its messages from now on\n")
        }
    }

    /// Waits up to `timeoutNanoseconds` for the reading machines to acknowledge what `output` wrote.
    func flush(_ output: Int, timeoutNanoseconds: Int64) {
        guard let remote = outputs[output], !remote.failed else { return }
        _ = remote.writer.waitForAcknowledgements(timeoutNanoseconds: timeoutNanoseconds)
    }
}
