// `apus replay`: runs a dataflow with some of its nodes replaced by a player of their recorded
// outputs (`apus replay-node`, a node of the run like any other).
import ApusDaemon
import ApusDataflow
@_spi(CAPI) import ApusNode
import ApusRecording
import ApusTransport
import ArgumentParser
import Foundation
import Glibc

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a dataflow with some nodes replaced by a recording of their outputs.",
        discussion: """
            Each node --replace names is replaced by a player with the same id and outputs: it \
            publishes the messages recorded on those outputs (by `apus record`) with the same bytes, \
            element type, shape and metadata, spaced as they were sent (divided by --speed), stamped \
            anew when sent. The other nodes run as `apus run` runs them and cannot tell the \
            difference. Before anything starts the recording is read whole (a truncated or damaged \
            file is refused, saying where), and every output of a replaced node that another node \
            takes must be in it. The player ends after the last message (its consumers see their \
            inputs close), or starts over with --loop.
            """
    )

    @Argument(help: "The recording (MCAP, from apus record).", completion: .file(extensions: ["mcap"]))
    var recording: String

    @Argument(help: "The dataflow file.", completion: .file(extensions: ["yml", "yaml"]))
    var file: String

    @Option(help: "The nodes to replace, as ID,ID.")
    var replace: String

    @Option(help: "Play faster (2.0) or slower (0.5) than recorded.")
    var speed = 1.0

    @Flag(help: "Start over after the last message, until the dataflow is stopped.")
    var loop = false

    @Option(help: ArgumentHelp("Stop the dataflow gracefully after this long.", valueName: "duration"))
    var stopAfter: String?

    @Flag(help: "Skip the nodes' build steps.")
    var noBuild = false

    @Flag(inversion: .prefixedNo, help: "Colour node names (default: when standard output is a terminal).")
    var color: Bool?

    func validate() throws {
        guard speed > 0, speed <= 1000 else { throw ValidationError("--speed must be more than 0 and at most 1000") }
        if let stopAfter, parseDuration(stopAfter) == nil { throw ValidationError(durationProblem("--stop-after", stopAfter)) }
    }

    func run() throws {
        var dataflow = try loadDataflow(file, nothing: "started")
        let reader: MCAPReader
        do {
            reader = try MCAPReader(path: recording)
            let ending = try reader.forEachMessage { _ in }
            guard ending.complete else {
                throw MCAPError(
                    "\(recording): \(ending.problem ?? "incomplete"); `apus record --recover` makes a whole file of what it holds")
            }
        } catch {
            printError("\(error)")
            printError("\(recording): nothing was replayed")
            throw ExitCode(1)
        }
        let recorded = Set(reader.channels.values.filter { reader.encoding(of: $0) != nil }.map(\.topic))
        guard let executable = Installation.executablePath() else {
            throw ValidationError("cannot find the apus executable to run the player")
        }
        var problems: [String] = []
        for id in replace.split(separator: ",").map(String.init) {
            guard let index = dataflow.nodes.firstIndex(where: { $0.id == id }) else {
                problems.append("--replace: \(file) has no node '\(id)' (nodes: \(dataflow.nodes.map(\.id).joined(separator: ", ")))")
                continue
            }
            let original = dataflow.nodes[index]
            for output in original.outputs where !recorded.contains("\(id)/\(output)") {
                let takers = dataflow.nodes.flatMap { node in
                    node.inputs.filter { $0.source == .output(node: id, output: output) }.map { "\(node.id)/\($0.id)" }
                }
                if !takers.isEmpty {
                    problems.append(
                        "\(recording) has no '\(id)/\(output)', which \(takers.joined(separator: ", ")) take\(takers.count == 1 ? "s" : "")"
                    )
                }
            }
            var player = NodeDescriptor(
                id: id, path: executable, resolvedPath: executable,
                args: ["replay-node", absolutePath(recording), "--speed", String(speed)] + (loop ? ["--loop"] : []),
                outputs: original.outputs)
            player.description = "plays \(id)'s outputs from \(recording)"
            dataflow.nodes[index] = player
        }
        guard problems.isEmpty else {
            for problem in problems { printError(problem) }
            printError("\(recording): nothing was replayed")
            throw ExitCode(1)
        }
        var options = RunOptions()
        options.stopAfter = stopAfter.flatMap(parseDuration)
        options.runBuild = !noBuild
        options.color = color
        let code = Supervisor(dataflow: dataflow, options: options).run()
        if code != 0 { throw ExitCode(code) }
    }
}

/// The player that `apus replay` puts in place of a recorded node: publishes the recorded
/// messages of this node's outputs with their original spacing.
struct ReplayNode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-node", abstract: "The player of `apus replay` (run as a node by it).", shouldDisplay: false)

    @Argument var recording: String
    @Option var speed = 1.0
    @Flag var loop = false

    func run() throws {
        let node = try Node()
        let reader = try MCAPReader(path: recording)
        let outputs = Dictionary(uniqueKeysWithValues: node.outputIDs.enumerated().map { ("\(node.id)/\($1)", $0) })
        var stopped = false
        var (sent, late, latest) = (0, 0, UInt64(0))
        defer {
            print(
                "replayed \(sent) message\(sent == 1 ? "" : "s"); \(late) sent more than 1 ms late"
                    + (late > 0 ? " (the latest by \(String(format: "%.1f", Double(latest) / 1e6)) ms)" : ""))
        }
        repeat {
            // The first message goes shortly, each next one as long after it as it was recorded.
            var first: (recorded: UInt64, sent: UInt64)?
            try reader.forEachMessage { (message) throws(MCAPError) in
                guard !stopped, let channel = reader.channels[message.channel], let encoding = reader.encoding(of: channel),
                    let output = outputs[channel.topic]
                else { return }
                try encoding.decode(message.data) { (recorded, payload) throws(MCAPError) in
                    // Copied into shared memory before it is due: at its time, only publishing is
                    // left (a frame's copy and its page faults do not make it late).
                    let sample: OutputSample<UInt8>
                    do {
                        sample = try node.allocate(output: output, byteCount: payload.count)
                    } catch {
                        throw MCAPError("\(channel.topic): \(error)")
                    }
                    if let from = payload.baseAddress, let to = sample.buffer.baseAddress {
                        UnsafeMutableRawPointer(to).copyMemory(from: from, byteCount: payload.count)
                    }
                    // The first message is due a moment from now, not now: it goes the way every
                    // other does (the first calls into the node cost a few hundred microseconds).
                    let origin = first ?? (message.logTime, monotonicNanoseconds() &+ Self.leadIn)
                    first = origin
                    let due = origin.sent &+ UInt64(Double(message.logTime &- origin.recorded) / speed)
                    stopped = Self.wait(until: due, node: node)
                    guard !stopped else { return }  // (the sample goes back to the pool)
                    var metadata = recorded
                    metadata.timestamp = 0  // stamped anew: the consumers see a message sent now
                    // Late as its stamp is (publishing wakes the consumers, who may take the
                    // CPU from the player before the call returns).
                    let lateness = monotonicNanoseconds() &- due
                    do {
                        try node.send(sample, as: metadata)
                        sent += 1
                        if lateness > 1_000_000, lateness < 1 << 62 {
                            late += 1
                            latest = max(latest, lateness)
                        }
                    } catch {
                        throw MCAPError("\(channel.topic): \(error)")
                    }
                }
            }
        } while loop && !stopped
    }

    /// How long before a message is due the player stops sleeping and spins: a wake-up from
    /// sleep is late by tens of microseconds. (Spinning longer does not help against the
    /// millisecond stalls a virtual machine has now and then, and costs a core at 1 kHz.)
    static let spinWindow: UInt64 = 200_000
    /// How long after the player starts its first message is due.
    static let leadIn: UInt64 = 10_000_000

    /// Waits until `due` (monotonic ns), looking for STOP every 20 ms; true if it came. It sleeps
    /// to `spinWindow` before, then spins.
    static func wait(until due: UInt64, node: Node) -> Bool {
        while true {
            if case .stop? = try? node.next(timeout: .zero) { return true }
            let now = monotonicNanoseconds()
            guard now < due else { return false }
            if due - now <= Self.spinWindow { continue }
            let wake = min(due - Self.spinWindow, now + 20_000_000)
            var time = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil)
        }
    }
}
