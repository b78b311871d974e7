// `apus run --record FILE`: a recorder that is a node of the run from its start (`apus
// record-node`), taking every output with backpressure, so the file holds every message from the
// first. It gets no STOP when the run is stopped: it ends once every producer has ended and it
// has written all they sent.
import ApusDaemon
import ApusDataflow
import ApusNode
import ApusRecording
import ApusTransport
import ArgumentParser
import Foundation
import Glibc

struct RecordNode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record-node", abstract: "The recorder of `apus run --record` (run as a node by it).", shouldDisplay: false)

    @Argument var file: String

    /// The recorder's node id (another id if a node of the dataflow has it).
    static func id(in dataflow: DataflowDescriptor) -> String {
        var id = "apus-record"
        var number = 1
        while dataflow.nodes.contains(where: { $0.id == id }) {
            number += 1
            id = "apus-record-\(number)"
        }
        return id
    }

    /// Adds the recorder of every output of `dataflow` into `file`; the run must not send it STOP
    /// (its id, returned, goes in `RunOptions.drainingNodes`).
    static func add(to dataflow: inout DataflowDescriptor, file: String, queueSize: Int = 64) throws -> String {
        guard let executable = Installation.executablePath() else { throw ValidationError("cannot find the apus executable to record") }
        let id = id(in: dataflow)
        let inputs = dataflow.nodes.flatMap { node in
            node.outputs.map {
                InputDescriptor(
                    id: "\(node.id)/\($0)", source: .output(node: node.id, output: $0), queueSize: queueSize, queuePolicy: .backpressure)
            }
        }
        guard !inputs.isEmpty else { throw ValidationError("--record: \(dataflow.file) has no outputs to record") }
        var recorder = NodeDescriptor(
            id: id, path: executable, resolvedPath: executable,
            args: ["record-node", file], outputs: [])
        recorder.inputs = inputs
        recorder.description = "records every output into \(file)"
        dataflow.nodes.append(recorder)
        return id
    }

    func run() throws {
        // SIGTERM (the end of the run's grace period) finishes the file with what it has.
        let signals = try SignalWatch([SIGTERM, SIGINT])
        let node = try Node()
        let topics = node.inputIDs
        let recorder = try SampleRecorder(path: file, library: "apus \(ApusVersion.current)", chunkSize: 4 << 20, topics: topics)
        var interrupted = false
        func take(_ event: Event?) throws {
            if case .input(let input) = event {
                try recorder.write(topic: input.id, metadata: input.metadata, payload: input.bytes)
                input.release()
            } else if case .error(let text) = event {
                printError("apus-record: \(text)")
            }
        }
        while !node.isFinished {
            _ = try recorder.flushIfDue()
            if signals.next() != nil {
                // Takes what is queued now, and ends.
                while let event = try node.next(timeout: .zero) { try take(event) }
                interrupted = true
                break
            }
            let now = monotonicNanoseconds()
            let untilFlush = recorder.nextFlush > now ? recorder.nextFlush - now : 0
            try take(try node.next(timeout: .nanoseconds(Int64(min(untilFlush, 100_000_000)))))
        }
        let environment = ProcessInfo.processInfo.environment
        try recorder.finish(
            metadata: Record.runEntries(
                dataflow: environment["APUS_DATAFLOW"] ?? "", run: environment["APUS_RUN_ID"] ?? "", topics: topics, lossy: false,
                drops: [:]))
        print(
            "recorded \(recorder.count) message\(recorder.count == 1 ? "" : "s") of \(topics.count) output\(topics.count == 1 ? "" : "s") into \(file)"
                + (interrupted ? " (cut short by a signal: what its producers sent after it was not written)" : ""))
    }
}
