// `apus record`: a running dataflow's outputs into an MCAP file, by a consumer that joins the run.
import ApusDaemon
@_spi(Inspection) import ApusNode
import ApusRecording
import ApusTransport
import ArgumentParser
import Foundation
import Glibc

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a running dataflow's outputs into an MCAP file.",
        discussion: """
            Joins the running dataflow (by name or run id) as a consumer of every output (or those \
            --outputs names) and writes each message, with its element type, shape, metadata and \
            send timestamp, into one MCAP channel per output: images as foxglove.RawImage or \
            foxglove.CompressedImage (protobuf), up to 64 numbers as JSON that Foxglove plots, \
            anything else as apus.sample (its schema's data describes the layout); each keeps \
            what `apus replay` needs to send it again exactly. `apus run FLOW --record FILE` \
            records from the first message instead. By default its queues use backpressure: a producer \
            waits for the recorder rather than lose a message. --lossy uses drop_oldest instead and \
            writes the drops into the file's `apus` metadata record. Messages go into chunks of \
            --chunk-size bytes (zstd-compressed with --compression zstd), each complete on disk before \
            the next, and at least every second: a recorder killed with SIGKILL leaves a file whose \
            complete chunks are readable; `apus record --recover FILE -o NEW` writes them into a \
            whole file. Ctrl-C, --duration or the end of the dataflow finish the file with \
            its summary: statistics and a chunk index, so readers can seek.
            """
    )

    @Argument(help: "The dataflow: its name or run id (default: the only one running).")
    var dataflow: String?

    @Option(name: [.customShort("o"), .customLong("output")], help: "The MCAP file to write (default: NAME-<UTC time>.mcap).")
    var file: String?

    @Option(help: "The outputs to record, as NODE/OUTPUT,NODE/OUTPUT (default: every output).")
    var outputs: String?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Flag(help: "Use drop_oldest queues (never hold up a producer); the drops are counted in the file.")
    var lossy = false

    @Option(help: "Chunk compression: none or zstd.")
    var compression: String = "none"

    @Option(help: "Bytes of messages per chunk before it is written.")
    var chunkSize = 4 << 20

    @Option(help: "Messages each input may queue before its producer waits (or, with --lossy, drops).")
    var queueSize = 64

    @Option(
        help: ArgumentHelp(
            "Write the complete chunks of a recording cut short (a recorder killed) into a whole file (-o).", valueName: "file"))
    var recover: String?

    func validate() throws {
        guard MCAPWriter.Compression(rawValue: compression == "none" ? "" : compression) != nil else {
            throw ValidationError("--compression must be none or zstd, not '\(compression)'")
        }
        guard (1...1 << 16).contains(queueSize) else { throw ValidationError("--queue-size must be between 1 and 65536") }
        guard chunkSize >= 1024 else { throw ValidationError("--chunk-size must be at least 1024 bytes") }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be more than 0 seconds") }
    }

    func run() throws {
        if let recover {
            guard dataflow == nil, let file else { throw ValidationError("--recover takes the damaged file and -o FILE, and no dataflow") }
            try Self.recover(recover, into: file)
            return
        }
        let run = try RunFinder.find(dataflow)
        let snapshot = try RunFinder.snapshot(run.socket)
        let running = snapshot.nodes.filter { $0.origin != "inspector" && ["running", "starting", "restarting"].contains($0.status) }
        let available = running.flatMap { node in node.outputs.map { "\(node.id)/\($0.id)" } }
        let topics = try outputs.map { list in try list.split(separator: ",").map { try topicArgument(String($0)) } } ?? available
        guard !topics.isEmpty else { throw ValidationError("\(run.description.name): no running node has outputs to record") }
        let path = file ?? "\(run.description.name)-\(Supervisor.utcStamp()).mcap"
        let recorder = try SampleRecorder(
            path: path, library: "apus \(ApusVersion.current)",
            compression: MCAPWriter.Compression(rawValue: compression == "none" ? "" : compression)!, chunkSize: chunkSize, topics: topics)
        let inspector = try Inspector(run, name: "record", sources: topics, queueSize: queueSize, backpressure: !lossy)
        let end = deadline(after: duration)
        printError("apus: recording \(topics.count) output\(topics.count == 1 ? "" : "s") of \(run.description.name) into \(path)")
        // A chunk goes to disk when full, and at least every second: a killed recorder loses at
        // most the last second.
        while true {
            let input = try inspector.next(until: min(end ?? .max, recorder.nextFlush))
            let flushDue = try recorder.flushIfDue()
            guard let input else {
                if !flushDue || inspector.isOver || inspector.wasInterrupted || end.map({ monotonicNanoseconds() >= $0 }) == true {
                    break
                }
                continue  // only the flush was due
            }
            try recorder.write(topic: input.id, metadata: input.metadata, payload: input.bytes)
            input.release()
        }
        let drops = inspector.node.droppedPerInput
        try recorder.finish(
            metadata: Self.runEntries(
                dataflow: run.description.dataflow, run: run.description.run, topics: topics, lossy: lossy, drops: drops))
        let dropped = drops.values.reduce(0, +)
        printError(
            "apus: recorded \(recorder.count) message\(recorder.count == 1 ? "" : "s") into \(path)"
                + (dropped > 0 ? "; \(dropped) dropped by --lossy (counted in the file's apus metadata)" : ""))
    }

    /// The `apus` metadata record's entries: which run, which outputs, how they were queued and
    /// what each lost.
    static func runEntries(dataflow: String, run: String, topics: [String], lossy: Bool, drops: [String: UInt64]) -> [(String, String)] {
        [
            ("dataflow", dataflow), ("run", run), ("outputs", topics.joined(separator: ",")),
            ("queue_policy", lossy ? "drop_oldest" : "backpressure"),
        ] + topics.map { ("dropped/\($0)", String(drops[$0] ?? 0)) }
    }

    /// Reads what `damaged` holds in its complete, undamaged chunks and writes it, with its
    /// schemas, channels and metadata, into a whole file at `path`.
    static func recover(_ damaged: String, into path: String) throws {
        guard damaged != path else { throw ValidationError("-o must name a new file, not the one to recover") }
        let reader = try MCAPReader(path: damaged)
        let writer = try MCAPWriter(path: path, library: "apus \(ApusVersion.current)")
        var schemaIDs: [UInt16: UInt16] = [:]
        var channelIDs: [UInt16: UInt16] = [:]
        func channel(_ id: UInt16) throws(MCAPError) -> UInt16 {
            if let known = channelIDs[id] { return known }
            let channel = reader.channels[id]!
            var schema: UInt16 = 0
            if let known = schemaIDs[channel.schema] {
                schema = known
            } else if let described = reader.schemas[channel.schema] {
                schema = try writer.addSchema(name: described.name, encoding: described.encoding, data: described.data)
                schemaIDs[channel.schema] = schema
            }
            let new = try writer.addChannel(
                topic: channel.topic, messageEncoding: channel.messageEncoding, schema: schema, metadata: channel.metadata)
            channelIDs[id] = new
            return new
        }
        var count = 0
        let ending = try reader.forEachMessage(skippingDamagedChunks: true) { (message) throws(MCAPError) in
            try writer.write(
                channel: try channel(message.channel), sequence: message.sequence, logTime: message.logTime,
                publishTime: message.publishTime, parts: [message.data])
            count += 1
        }
        for id in reader.channels.keys.sorted() { _ = try channel(id) }
        for (name, entries) in reader.metadata { try writer.addMetadata(name: name, entries) }
        try writer.close()
        print(
            "recovered \(count) message\(count == 1 ? "" : "s") from \(ending.chunks) complete chunk\(ending.chunks == 1 ? "" : "s") "
                + "of \(damaged) into \(path)" + (ending.problem.map { " (\($0))" } ?? " (it was whole)"))
    }
}
