// `apus topic list|echo|hz`: what is on a running dataflow's outputs, seen by a consumer that
// joins the run and leaves it again (its queues are drop_oldest: it never slows a producer).
import ApusDaemon
import ApusNode
import ApusTransport
import ArgumentParser
import Foundation
import Glibc

struct Topic: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look at the messages on a running dataflow's outputs.",
        discussion: """
            Each subcommand joins the running dataflow (found by name or run id, as `apus top` finds \
            it) as an inspector: a consumer of its own, fed through drop_oldest queues, so it never \
            slows or blocks a producer and what it cannot keep up with is counted as its own drops. \
            Nothing restarts; when it ends (a count reached, Ctrl-C, even SIGKILL), its queues and \
            what it held go back.
            """,
        subcommands: [TopicList.self, TopicEcho.self, TopicHz.self]
    )
}

struct TopicList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every output of a running dataflow with its type, shape, rate and subscribers.",
        discussion: """
            Watches every output for --window seconds: the type and shape are those of the last \
            message seen (\"-\" when none came), the rate counts every message sent in that time.
            """
    )

    @Argument(help: "The dataflow: its name or run id (default: the only one running).")
    var dataflow: String?

    @Option(help: "Seconds to watch the outputs for.")
    var window: Double = 1

    @Flag(help: "Print the list as JSON.")
    var json = false

    func validate() throws {
        guard window > 0, window <= 3600 else { throw ValidationError("--window must be between 0 and 3600 seconds") }
    }

    struct Row: Encodable {
        var topic: String
        var type: String?
        var shape: [UInt64]?
        var rate: Double
        var subscribers: [String]
    }

    func run() throws {
        let run = try RunFinder.find(dataflow)
        let before = try RunFinder.snapshot(run.socket)
        let producers = before.nodes.filter { $0.origin != "inspector" && ["running", "starting", "restarting"].contains($0.status) }
        let topics = producers.flatMap { node in node.outputs.map { "\(node.id)/\($0.id)" } }
        guard !topics.isEmpty else {
            print("\(run.description.name): no running node has outputs")
            return
        }
        let inspector = try Inspector(run, name: "topic-list", sources: topics, queueSize: 4)
        let started = monotonicNanoseconds()
        let first = try RunFinder.snapshot(run.socket)
        var last: [String: (ElementType, [UInt64])] = [:]
        let end = deadline(after: window)
        while let input = try inspector.next(until: end) {
            last[input.id] = (input.elementType, input.shape)
            input.release()
        }
        let second = try RunFinder.snapshot(run.socket)
        let seconds = max(Double(monotonicNanoseconds() - started) / 1e9, 1e-3)
        let sent = { (snapshot: RunSnapshot) -> [String: UInt64] in
            let own = snapshot.nodes.first { $0.id == inspector.node.id }?.inputs ?? []
            return Dictionary(own.map { ($0.id, $0.received) }, uniquingKeysWith: +)
        }
        let (counted, counting) = (sent(first), sent(second))
        let rows = producers.flatMap { node in
            node.outputs.map { output -> Row in
                let topic = "\(node.id)/\(output.id)"
                let seen = last[topic]
                return Row(
                    topic: topic, type: seen.map { "\($0.0)" }, shape: seen?.1,
                    rate: Double((counting[topic] ?? 0) &- (counted[topic] ?? 0)) / seconds,
                    subscribers: output.subscribers.filter { !$0.hasPrefix(inspector.node.id + "/") })
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            return
        }
        print(
            tableText(
                [["TOPIC", "TYPE", "SHAPE", "RATE", "SUBSCRIBERS"]]
                    + rows.map { row in
                        [
                            row.topic, row.type ?? "-",
                            row.shape.map { $0.isEmpty ? "-" : "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "-",
                            String(format: "%.1f Hz", row.rate), row.subscribers.isEmpty ? "-" : row.subscribers.joined(separator: ", "),
                        ]
                    }))
    }
}

struct TopicEcho: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Print the messages on an output of a running dataflow.",
        discussion: """
            Per message: its send timestamp (monotonic seconds), element type, shape, size and \
            metadata, then a preview of its first values: numbers as numbers, utf8 as text, uint8 as \
            hex. The payload is read in place in shared memory, and only as far as it is shown. \
            --json prints one JSON object per line (timestamp in nanoseconds). It ends after \
            --count messages, after --duration seconds, with Ctrl-C, or when the dataflow stops. Its \
            queue holds 10 messages unless --queue-size says otherwise; what it drops is reported.
            """
    )

    @OptionGroup var watch: WatchOptions

    @Option(help: "Stop after this many messages.")
    var count: Int?

    @Flag(help: "Print each message as a line of JSON.")
    var json = false

    /// Messages the inspector may fall behind by before it drops.
    static let queueSize = 10

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        let inspector = try watch.attach(name: "topic-echo", queueSize: Self.queueSize)
        let topic = watch.topic
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var printed = 0
        let end = deadline(after: watch.duration)
        while count.map({ printed < $0 }) ?? true, let input = try inspector.next(until: end) {
            let record = EchoRecord(topic: topic, input: input)
            print(json ? String(decoding: try encoder.encode(record.json), as: UTF8.self) : record.text)
            fflush(nil)
            input.release()
            printed += 1
        }
        inspector.reportDrops()
    }
}

struct TopicHz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hz",
        abstract: "Measure the rate of an output of a running dataflow.",
        discussion: """
            Each second prints the average rate over the last --window messages, the min, max and \
            standard deviation of the period between them, and the bandwidth. The figures come from \
            the timestamps the sender put on each message, so the inspector's own scheduling does \
            not bend them. It ends with Ctrl-C, after --duration seconds, or when the dataflow stops. \
            Its queue holds 2048 messages unless --queue-size says otherwise: a dropped message would \
            stretch a period, and what it drops is reported.
            """
    )

    @OptionGroup var watch: WatchOptions

    @Option(help: "How many of the latest messages the figures cover.")
    var window = 1000

    @Flag(help: "Print each report as a line of JSON.")
    var json = false

    /// Deep: a dropped message would stretch a period (at 1 M msg/s it looks every 0.5 ms).
    static let queueSize = 2048

    func validate() throws {
        guard (2...1_000_000).contains(window) else { throw ValidationError("--window must be between 2 and 1000000 messages") }
    }

    func run() throws {
        let inspector = try watch.attach(name: "topic-hz", queueSize: Self.queueSize)
        var rate = RateWindow(capacity: window)
        let end = deadline(after: watch.duration)
        var nextReport = monotonicNanoseconds() &+ 1_000_000_000
        func report() {
            guard let figures = rate.figures else {
                if !json { print("no messages yet") }
                return
            }
            print(json ? figures.json : figures.text)
            fflush(nil)
        }
        while true {
            let input = try inspector.next(until: min(end ?? .max, nextReport))
            if let input {
                rate.add(timestamp: input.timestamp, bytes: input.bytes.count)
                input.release()
            } else if monotonicNanoseconds() < nextReport {
                break  // over: interrupted, --duration, or the dataflow stopped
            }
            if monotonicNanoseconds() >= nextReport {
                report()
                nextReport = monotonicNanoseconds() &+ 1_000_000_000
            }
        }
        report()
        inspector.reportDrops()
    }
}

/// What `topic echo` and `topic hz` are pointed at, and for how long.
struct WatchOptions: ParsableArguments {
    @Argument(help: "The dataflow: its name or run id.")
    var dataflow: String

    @Argument(help: "The output, as NODE/OUTPUT.", transform: topicArgument)
    var topic: String

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "The inspector's queue (drop_oldest): how many messages it may fall behind by before it drops.")
    var queueSize: Int?

    func validate() throws {
        if let queueSize, !(1...1 << 16).contains(queueSize) { throw ValidationError("--queue-size must be between 1 and 65536") }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be more than 0 seconds") }
    }

    /// Attaches an inspector called `name` to the topic, with `--queue-size` or `queueSize`.
    func attach(name: String, queueSize: Int) throws -> Inspector {
        try Inspector(try RunFinder.find(dataflow), name: name, sources: [topic], queueSize: self.queueSize ?? queueSize)
    }
}
