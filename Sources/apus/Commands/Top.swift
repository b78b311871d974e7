// `apus top`: a running dataflow's nodes and inputs, live.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a running dataflow's nodes and inputs, refreshed each second (q or Ctrl-C quits).",
        discussion: """
            Finds the dataflow by NAME (its file's name without .yml, or its `apus start --name`) or \
            run id; with none given, the only one running. Per node: pid, CPU %, memory, restarts, \
            status. Per input: messages per second, queue fill, what it lost (dropped from a full \
            drop_oldest queue, sent while it was gone), and its latency from send to take p50/p99 \
            (the consumer samples one message in 16; shown as the power-of-two bound it is under). The figures come from counters the run keeps \
            in shared memory and from /proc: no node is asked anything. --once prints one snapshot \
            (rates over half a second) and exits; --json prints it as JSON.
            """
    )

    @Argument(help: "The dataflow: its name or run id (default: the only one running).")
    var dataflow: String?

    @Flag(help: "Print one snapshot and exit.")
    var once = false

    @Flag(help: "Print the snapshot as JSON (implies --once).")
    var json = false

    func run() throws {
        let run = try RunFinder.find(dataflow)
        if once || json {
            let first = try RunFinder.snapshot(run.socket)
            usleep(500_000)
            let view = TopView(try RunFinder.snapshot(run.socket), previous: first)
            print(json ? view.json : view.table)
            return
        }
        try live(run)
    }

    /// Redraws each second until q, Ctrl-C, or the dataflow ends.
    func live(_ run: RunFinder.Found) throws {
        let terminal = RawTerminal()
        defer { terminal.restore() }
        var previous = try RunFinder.snapshot(run.socket)
        while true {
            if terminal.pressed(within: 1.0, any: ["q", "Q", "\u{3}"]) { return }
            guard let current = try? RunFinder.snapshot(run.socket) else {
                print("\u{1B}[2J\u{1B}[H\(run.description.name): the dataflow has ended")
                return
            }
            print(
                "\u{1B}[2J\u{1B}[H" + TopView(current, previous: previous).table.replacingOccurrences(of: "\n", with: "\r\n"),
                terminator: "\r\n")
            fflush(nil)
            previous = current
        }
    }
}

/// Two snapshots made into rates and percentages.
struct TopView {
    let current: RunSnapshot
    let seconds: Double
    let previous: [String: RunSnapshot.Node]

    init(_ current: RunSnapshot, previous: RunSnapshot) {
        self.current = current
        seconds = max(Double(current.time &- previous.time) / 1e9, 1e-3)
        self.previous = Dictionary(previous.nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func cpuPercent(_ node: RunSnapshot.Node) -> Double? {
        guard let now = node.cpuSeconds, let before = previous[node.id]?.cpuSeconds, previous[node.id]?.pid == node.pid else { return nil }
        return max(now - before, 0) / seconds * 100
    }

    func rate(_ node: RunSnapshot.Node, _ input: RunSnapshot.Input) -> Double {
        guard let before = previous[node.id]?.inputs.first(where: { $0.id == input.id }), input.received >= before.received else {
            return 0
        }
        return Double(input.received - before.received) / seconds
    }

    /// The bucket upper bounds (µs) under which half and 99 % of the latencies sampled since the
    /// previous snapshot fall; nil without samples.
    func latency(_ node: RunSnapshot.Node, _ input: RunSnapshot.Input) -> (p50: Double, p99: Double)? {
        var counts = input.latency
        if let before = previous[node.id]?.inputs.first(where: { $0.id == input.id }), before.latency.count == counts.count,
            zip(counts, before.latency).allSatisfy({ $0 >= $1 }), zip(counts, before.latency).contains(where: { $0 > $1 })
        {
            counts = zip(counts, before.latency).map { $0 - $1 }
        }
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        func bound(_ fraction: Double) -> Double {
            var seen: UInt64 = 0
            for (bucket, count) in counts.enumerated() {
                seen += count
                if Double(seen) >= fraction * Double(total) { return Double(1 << bucket) }
            }
            return Double(1 << (counts.count - 1))
        }
        return (bound(0.5), bound(0.99))
    }

    static func microseconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 1000 ? String(format: "<%.0f ms", value / 1000) : String(format: "<%.0f µs", value)
    }

    var table: String {
        var rows = [["NODE", "PID", "CPU%", "MEM", "RESTARTS", "STATUS"]]
        for node in current.nodes {
            rows.append([
                node.id, node.pid.map(String.init) ?? "-", cpuPercent(node).map { String(format: "%.1f", $0) } ?? "-",
                node.rssBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "-", "\(node.restarts)", node.status,
            ])
        }
        var inputs = [["INPUT", "SOURCE", "MSG/S", "QUEUE", "DROPPED", "SKIPPED", "LATENCY P50", "P99"]]
        for node in current.nodes {
            for input in node.inputs {
                let latency = latency(node, input)
                inputs.append([
                    "\(node.id)/\(input.id)", input.source, String(format: "%.1f", rate(node, input)), "\(input.queued)/\(input.capacity)",
                    "\(input.dropped)", "\(input.skipped)", Self.microseconds(latency?.p50), Self.microseconds(latency?.p99),
                ])
            }
        }
        return "\(current.name) (run \(current.run))\n\n" + tableText(rows) + (inputs.count > 1 ? "\n\n" + tableText(inputs) : "")
    }

    var json: String {
        let nodes: [[String: Any]] = current.nodes.map { node in
            var entry: [String: Any] = [
                "id": node.id, "origin": node.origin, "status": node.status, "restarts": node.restarts,
                "pool_slots": node.poolSlots, "pool_slots_in_use": node.poolSlotsInUse,
                "outputs": node.outputs.map { ["id": $0.id, "subscribers": $0.subscribers] },
                "inputs": node.inputs.map { input -> [String: Any] in
                    var entry: [String: Any] = [
                        "id": input.id, "source": input.source, "capacity": input.capacity, "queued": input.queued,
                        "received": input.received, "dropped": input.dropped, "skipped": input.skipped, "rate_hz": rate(node, input),
                        "latency_histogram": input.latency,
                    ]
                    if let latency = latency(node, input) {
                        entry["latency_p50_us_under"] = latency.p50
                        entry["latency_p99_us_under"] = latency.p99
                    }
                    return entry
                },
            ]
            if let pid = node.pid { entry["pid"] = pid }
            if let cpu = cpuPercent(node) { entry["cpu_percent"] = cpu }
            if let rss = node.rssBytes { entry["rss_bytes"] = rss }
            return entry
        }
        let object: [String: Any] = ["run": current.run, "name": current.name, "nodes": nodes]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Standard input in raw mode while `apus top` runs, when it is a terminal.
final class RawTerminal {
    private var saved = termios()
    private let isTerminal = isatty(0) == 1

    init() {
        guard isTerminal else { return }
        tcgetattr(0, &saved)
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        tcsetattr(0, TCSANOW, &raw)
    }

    func restore() {
        if isTerminal { tcsetattr(0, TCSANOW, &saved) }
    }

    /// Whether one of `keys` was typed within `seconds` (else it just waits that long).
    func pressed(within seconds: Double, any keys: Set<Character>) -> Bool {
        var entry = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        guard isTerminal, poll(&entry, 1, Int32(seconds * 1000)) > 0 else {
            if !isTerminal { usleep(UInt32(seconds * 1_000_000)) }
            return false
        }
        var byte: UInt8 = 0
        guard read(0, &byte, 1) == 1 else { return false }
        return keys.contains(Character(UnicodeScalar(byte)))
    }
}
