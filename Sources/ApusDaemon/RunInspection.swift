// A running dataflow's inspection socket. Every `apus run` (in the foreground or for the daemon)
// listens at ControlPaths.runs/<run id>.sock and describes itself in <run id>.json next to it, so
// `apus top` can find it by name or id and ask its coordinator for a snapshot. The numbers come
// from what the coordinator holds already: the inboxes' ring counters in shared memory and /proc.
// No node is asked anything.
import ApusTransport
import Foundation
import Glibc

/// What a run's files say of it (`<run id>.json`).
public struct RunDescription: Codable, Sendable {
    public var run: String
    /// The dataflow file's name without its extension (`--name` in daemon mode).
    public var name: String
    public var dataflow: String
    public var pid: Int32
}

/// One look at a running dataflow.
public struct RunSnapshot: Codable, Sendable {
    public struct Input: Codable, Sendable {
        public var id: String
        public var source: String
        public var capacity: Int
        public var queued: Int
        /// Messages queued for it in this incarnation of the node.
        public var received: UInt64
        /// Evicted from a full `drop_oldest` queue, in all incarnations (as the end-of-run report).
        public var dropped: UInt64
        /// Sent while it was gone (restarting, or ended).
        public var skipped: UInt64
        /// Sampled latencies from send to take, by InputRing's buckets (this incarnation).
        public var latency: [UInt64]
    }

    public struct Output: Codable, Sendable {
        public var id: String
        /// Its consumers' inputs, `node/input`, inspectors included.
        public var subscribers: [String]
    }

    public struct Node: Codable, Sendable {
        public var id: String
        /// `dataflow` (from the file), `added` (`apus node add`) or `inspector`.
        public var origin: String
        public var pid: Int32?
        public var status: String
        public var restarts: Int
        /// Its process's user and system CPU time so far, in seconds.
        public var cpuSeconds: Double?
        public var rssBytes: UInt64?
        public var inputs: [Input]
        public var outputs: [Output]
        /// Slots of its current pools, and those a consumer holds or has queued (or it fills).
        public var poolSlots: Int
        public var poolSlotsInUse: Int
    }

    public var run: String
    public var name: String
    /// CLOCK_MONOTONIC nanoseconds when it was taken.
    public var time: UInt64
    public var nodes: [Node]
}

/// What an inspector asks of a run: a consumer of its own on each of `sources` (NODE/OUTPUT),
/// with queues of `queueSize`: `drop_oldest`, so that it can never slow a producer, unless it is a
/// recorder that must lose nothing (`backpressure`).
public struct AttachRequest: Codable, Sendable {
    /// What the inspector is (`topic-echo`): its consumer's id is this and a number.
    public var name: String
    public var sources: [String]
    public var queueSize: Int
    public var backpressure: Bool?

    public init(name: String, sources: [String], queueSize: Int, backpressure: Bool = false) {
        self.name = name
        self.sources = sources
        self.queueSize = queueSize
        self.backpressure = backpressure
    }
}

/// `apus node add`: a node file (one node, in the dataflow's node shape) to add to the run.
public struct AddNodeRequest: Codable, Sendable {
    /// The file as the user named it (for messages), its folder (absolute), and its text.
    public var file: String
    public var directory: String
    public var yaml: String

    public init(file: String, directory: String, yaml: String) {
        self.file = file
        self.directory = directory
        self.yaml = yaml
    }
}

/// The listening side, owned by the Supervisor. A request is one message: a verb (`snapshot`,
/// `attach`, `add`, `remove`), a newline and a JSON body. `snapshot` is answered with JSON and
/// the connection closes; the others with `ok` or `error`, a newline and text. After an `ok` to
/// `attach` the connection carries the node protocol (`NodeMessage`) of the inspector's consumer.
final class RunInspection {
    static let snapshotVerb = "snapshot"
    let listener: ControlListener
    let descriptionPath: String

    init(runID: String, description: RunDescription, paths: ControlPaths = ControlPaths()) throws {
        try paths.prepare()
        listener = try ControlListener(path: "\(paths.runs)/\(runID).sock")
        descriptionPath = "\(paths.runs)/\(runID).json"
        guard replaceFile(descriptionPath, String(decoding: try JSONEncoder().encode(description), as: UTF8.self)) else {
            throw SupervisorError("cannot write \(descriptionPath): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        unlink(descriptionPath)
    }

    /// Accepts one client and reads its request, waiting a short while (a client that says
    /// nothing costs at most that; a consumer's later messages are read only once they are whole).
    func accept() -> (client: ControlChannel, verb: String, body: [UInt8])? {
        guard let client = try? listener.accept() else { return nil }
        var limit = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard let (request, fds) = try? client.receive() else { return nil }
        for fd in fds { close(fd) }
        let verb = request.prefix { $0 != UInt8(ascii: "\n") }
        return (client, String(decoding: verb, as: UTF8.self), Array(request.dropFirst(verb.count + 1)))
    }

    func answer(_ client: ControlChannel, ok: Bool, _ text: String) {
        try? client.send(Array(((ok ? "ok\n" : "error\n") + text).utf8))
    }
}

extension Supervisor {
    /// What `apus top` shows: each node's process and each input's counters.
    func snapshot() -> RunSnapshot {
        // An inspector that left is gone (its place is kept only until the next one takes it).
        let nodes = nodes.filter { $0.origin != .attached || $0.state != .finished }.map { node -> RunSnapshot.Node in
            let inputs = node.plan.streams.enumerated().map { ring, stream -> RunSnapshot.Input in
                let input = node.plan.descriptor.inputs[stream.input]
                let counters = node.inbox.rings[ring]
                let (dropped, skipped) = losses(of: node, ring: ring)
                return RunSnapshot.Input(
                    id: input.id, source: input.source.description, capacity: input.queueSize, queued: counters.queued,
                    received: counters.enqueued, dropped: dropped, skipped: skipped, latency: counters.latencyHistogram)
            }
            let process = node.isAlive ? ProcessFigures(pid: node.pid) : nil  // not an inspector's: not ours
            let outputs = node.plan.descriptor.outputs.enumerated().map { output, id in
                RunSnapshot.Output(id: id, subscribers: subscribers(of: node, output: output))
            }
            let pid = node.origin == .attached ? node.attachedPID : node.pid
            return RunSnapshot.Node(
                id: node.id, origin: node.originWord, pid: pid > 0 && node.state != .finished ? pid : nil, status: node.statusWord,
                restarts: node.restarts, cpuSeconds: process?.cpuSeconds, rssBytes: process?.rssBytes, inputs: inputs,
                outputs: outputs, poolSlots: node.pools.reduce(0) { $0 + $1.view.layout.slotCount },
                poolSlotsInUse: node.pools.reduce(0) { $0 + $1.view.usedSlots })
        }
        return RunSnapshot(run: runID, name: runName, time: monotonicNanoseconds(), nodes: nodes)
    }

    /// The inputs `output` of `node` feeds now, as `consumer/input`.
    func subscribers(of node: NodeRuntime, output: Int) -> [String] {
        nodes.filter { $0.state != .finished && $0.origin == .planned || $0.wired && !$0.unwired }.flatMap { consumer in
            consumer.plan.streams.filter { $0.producer.node == node.index && $0.output == output }.map {
                "\(consumer.id)/\(consumer.plan.descriptor.inputs[$0.input].id)"
            }
        }
    }

    /// The run's name for `apus top NAME`: the dataflow file's name without its extension.
    var runName: String {
        if let name = options.name { return name }
        let file = plan.dataflow.file.split(separator: "/").last.map(String.init) ?? plan.dataflow.file
        return file.hasSuffix(".yml") || file.hasSuffix(".yaml") ? String(file[..<file.lastIndex(of: ".")!]) : file
    }
}

extension NodeRuntime {
    var originWord: String {
        switch origin {
        case .planned: "dataflow"
        case .added: "added"
        case .attached: "inspector"
        }
    }

    var statusWord: String {
        switch state {
        case .waiting: "restarting"
        case .spawned, .connected: "starting"
        case .ready: "running"
        case .finished: failure != nil ? "failed" : removing ? "removed" : "finished"
        }
    }
}

/// A process's CPU time and resident memory, from /proc.
struct ProcessFigures {
    var cpuSeconds: Double?
    var rssBytes: UInt64?

    init(pid: Int32) {
        if let stat = readTextFile("/proc/\(pid)/stat", limit: 4096), let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the command: state is field 3, utime 14 and stime 15 (1-based, in clock ticks).
            if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
                cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = readTextFile("/proc/\(pid)/status", limit: 16384),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = UInt64(line.split(separator: " ").dropFirst().first ?? "")
        {
            rssBytes = kilobytes * 1024
        }
    }
}

/// The client side: finds a running dataflow by name or run id and asks it for snapshots.
public enum RunFinder {
    public struct Found: Sendable {
        public var description: RunDescription
        public var socket: String
    }

    /// The runs whose socket answers; the files of runs that ended without removing them (killed)
    /// are removed.
    public static func running(paths: ControlPaths = ControlPaths()) -> [Found] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: paths.runs) else { return [] }
        var found: [Found] = []
        for entry in entries.sorted() where entry.hasSuffix(".json") {
            let file = "\(paths.runs)/\(entry)"
            let socket = String(file.dropLast(5)) + ".sock"
            guard let text = readTextFile(file, limit: 65536),
                let description = try? JSONDecoder().decode(RunDescription.self, from: Data(text.utf8))
            else { continue }
            if kill(description.pid, 0) != 0, errno == ESRCH {
                unlink(file)
                unlink(socket)
                continue
            }
            found.append(Found(description: description, socket: socket))
        }
        return found
    }

    /// The run named `name` (its name or run id, or a prefix of the id), or the only one running.
    public static func find(_ name: String?, paths: ControlPaths = ControlPaths()) throws(ControlError) -> Found {
        let runs = running(paths: paths)
        let listed = runs.map { "\($0.description.name) (\($0.description.run))" }.joined(separator: ", ")
        guard let name else {
            guard runs.count == 1 else {
                throw .refused(
                    runs.isEmpty
                        ? "no dataflow is running (start one with `apus run FILE` or `apus start FILE`)"
                        : "\(runs.count) dataflows are running: name one of \(listed)")
            }
            return runs[0]
        }
        let matches = runs.filter { $0.description.name == name || $0.description.run.hasPrefix(name) }
        guard matches.count == 1 else {
            throw .refused(
                matches.isEmpty
                    ? "no running dataflow is called '\(name)'" + (runs.isEmpty ? " (none is running)" : " (running: \(listed))")
                    : "'\(name)' names \(matches.count) running dataflows: use a run id (\(listed))")
        }
        return matches[0]
    }

    /// A snapshot of the run at `socket`.
    public static func snapshot(_ socket: String) throws(ControlError) -> RunSnapshot {
        let channel = try connect(socket, RunInspection.snapshotVerb, [])
        guard let (body, _) = try? channel.receive(), let snapshot = try? JSONDecoder().decode(RunSnapshot.self, from: Data(body)) else {
            throw .protocolViolation("the dataflow at \(socket) sent no snapshot")
        }
        return snapshot
    }

    /// Asks the run at `socket` for `verb` with `body` (see `RunInspection`) and returns its
    /// answer's text, with the connection (after `attach`, the inspector's consumer's own).
    public static func ask(_ socket: String, _ verb: String, _ body: [UInt8]) throws(ControlError) -> (ControlChannel, String) {
        let channel = try connect(socket, verb, body)
        guard let (answer, fds) = try? channel.receive() else {
            throw .protocolViolation("the dataflow at \(socket) did not answer")
        }
        for fd in fds { close(fd) }
        let text = String(decoding: answer, as: UTF8.self)
        if text.hasPrefix("ok\n") { return (channel, String(text.dropFirst(3))) }
        throw .refused(text.hasPrefix("error\n") ? String(text.dropFirst(6)) : "the dataflow at \(socket) answered '\(text.prefix(80))'")
    }

    /// `ask` with a JSON body.
    public static func ask<T: Encodable>(_ socket: String, _ verb: String, json request: T) throws(ControlError) -> (ControlChannel, String)
    {
        guard let body = try? JSONEncoder().encode(request) else { throw .protocolViolation("cannot encode the request") }
        return try ask(socket, verb, [UInt8](body))
    }

    private static func connect(_ socket: String, _ verb: String, _ body: [UInt8]) throws(ControlError) -> ControlChannel {
        do {
            let channel = try ControlChannel.connect(path: socket, maxMessageSize: ControlProtocol.maximumResponse)
            try channel.send(Array(verb.utf8) + [UInt8(ascii: "\n")] + body)
            return channel
        } catch {
            throw .refused("cannot reach the dataflow at \(socket): \(error)")
        }
    }
}
