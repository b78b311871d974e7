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

    public struct Node: Codable, Sendable {
        public var id: String
        public var pid: Int32?
        public var status: String
        public var restarts: Int
        /// Its process's user and system CPU time so far, in seconds.
        public var cpuSeconds: Double?
        public var rssBytes: UInt64?
        public var inputs: [Input]
    }

    public var run: String
    public var name: String
    /// CLOCK_MONOTONIC nanoseconds when it was taken.
    public var time: UInt64
    public var nodes: [Node]
}

/// The listening side, owned by the Supervisor.
final class RunInspection {
    static let request = "snapshot"
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

    /// Answers one client: a short wait for its request (a client that says nothing costs at
    /// most that), then the snapshot, then the connection closes.
    func serve(_ snapshot: () -> RunSnapshot) {
        guard let client = try? listener.accept() else { return }
        var limit = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard let (request, fds) = try? client.receive() else { return }
        for fd in fds { close(fd) }
        guard String(decoding: request, as: UTF8.self) == Self.request, let body = try? JSONEncoder().encode(snapshot()) else { return }
        try? client.send([UInt8](body))
    }
}

extension Supervisor {
    /// What `apus top` shows: each node's process and each input's counters.
    func snapshot() -> RunSnapshot {
        let nodes = nodes.map { node -> RunSnapshot.Node in
            let inputs = node.plan.streams.enumerated().map { ring, stream -> RunSnapshot.Input in
                let input = node.plan.descriptor.inputs[stream.input]
                let counters = node.inbox.rings[ring]
                let (dropped, skipped) = losses(of: node, ring: ring)
                return RunSnapshot.Input(
                    id: input.id, source: input.source.description, capacity: input.queueSize, queued: counters.queued,
                    received: counters.enqueued, dropped: dropped, skipped: skipped, latency: counters.latencyHistogram)
            }
            let process = node.isAlive ? ProcessFigures(pid: node.pid) : nil
            return RunSnapshot.Node(
                id: node.id, pid: node.isAlive ? node.pid : nil, status: node.statusWord, restarts: node.restarts,
                cpuSeconds: process?.cpuSeconds, rssBytes: process?.rssBytes, inputs: inputs)
        }
        return RunSnapshot(run: runID, name: runName, time: monotonicNanoseconds(), nodes: nodes)
    }

    /// The run's name for `apus top NAME`: the dataflow file's name without its extension.
    var runName: String {
        let file = plan.dataflow.file.split(separator: "/").last.map(String.init) ?? plan.dataflow.file
        return file.hasSuffix(".yml") || file.hasSuffix(".yaml") ? String(file[..<file.lastIndex(of: ".")!]) : file
    }
}

extension NodeRuntime {
    var statusWord: String {
        switch state {
        case .waiting: "restarting"
        case .spawned, .connected: "starting"
        case .ready: "running"
        case .finished: failure == nil ? "finished" : "failed"
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
        let channel: ControlChannel
        do {
            channel = try ControlChannel.connect(path: socket, maxMessageSize: ControlProtocol.maximumResponse)
            try channel.send(Array(RunInspection.request.utf8))
        } catch {
            throw .refused("cannot reach the dataflow at \(socket): \(error)")
        }
        guard let (body, _) = try? channel.receive(), let snapshot = try? JSONDecoder().decode(RunSnapshot.self, from: Data(body)) else {
            throw .protocolViolation("the dataflow at \(socket) sent no snapshot")
        }
        return snapshot
    }
}
