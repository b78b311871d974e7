/// Counts and drawings of a dataflow's graph, for `apus check` and `apus graph`.
extension DataflowDescriptor {
    /// Node-to-node connections (one per input fed by an output).
    public var edgeCount: Int {
        nodes.reduce(0) { count, node in
            count + node.inputs.filter { if case .output = $0.source { true } else { false } }.count
        }
    }

    /// Distinct timers; inputs naming the same period share one timer.
    public var timers: [TimerSpec] {
        var seen: Set<UInt64> = []
        var timers: [TimerSpec] = []
        for node in nodes {
            for input in node.inputs {
                if case .timer(let timer) = input.source, seen.insert(timer.periodNanoseconds).inserted {
                    timers.append(timer)
                }
            }
        }
        return timers
    }

    /// e.g. `3 nodes, 4 edges, 1 timer`.
    public var summary: String {
        func plural(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }
        return [plural(nodes.count, "node"), plural(edgeCount, "edge"), plural(timers.count, "timer")]
            .joined(separator: ", ")
    }
}

public enum GraphFormat: String, Sendable, CaseIterable {
    case mermaid
    case dot
}

/// Renders a dataflow as Mermaid or Graphviz DOT: nodes, timers as their own sources,
/// and edges labelled with input names (plus the queue settings that differ from the default).
public struct DataflowGraph: Sendable {
    public var dataflow: DataflowDescriptor

    public init(_ dataflow: DataflowDescriptor) {
        self.dataflow = dataflow
    }

    public func render(_ format: GraphFormat) -> String {
        switch format {
        case .mermaid: mermaid()
        case .dot: dot()
        }
    }

    struct Edge {
        var from: String
        var to: String
        var label: String
    }

    private var timerNames: [(name: String, timer: TimerSpec)] {
        dataflow.timers.map {
            ("timer_\($0.unit.rawValue)_\($0.description.split(separator: "/").last.map(String.init)?.replacingDots() ?? "")", $0)
        }
    }

    private func timerName(_ timer: TimerSpec) -> String {
        timerNames.first { $0.timer.periodNanoseconds == timer.periodNanoseconds }!.name
    }

    /// Edges keyed by internal names; nodes are `n0`, `n1`, … so any id is safe in both formats.
    private func edges(nodeName: [String: String]) -> [Edge] {
        var edges: [Edge] = []
        for node in dataflow.nodes {
            for input in node.inputs {
                var label = input.id
                if case .output(_, let output) = input.source, output != input.id {
                    label = "\(output) → \(input.id)"
                }
                var settings: [String] = []
                if input.queueSize != InputDescriptor.defaultQueueSize { settings.append("queue \(input.queueSize)") }
                if input.queuePolicy != .dropOldest { settings.append(input.queuePolicy.rawValue) }
                if let timeout = input.inputTimeout { settings.append("timeout \(formatNumber(timeout)) s") }
                if !settings.isEmpty { label += " (\(settings.joined(separator: ", ")))" }
                let from: String =
                    switch input.source {
                    case .output(let producer, _): nodeName[producer]!
                    case .timer(let timer): timerName(timer)
                    }
                edges.append(Edge(from: from, to: nodeName[node.id]!, label: label))
            }
        }
        return edges
    }

    private var nodeNames: [String: String] {
        Dictionary(uniqueKeysWithValues: dataflow.nodes.enumerated().map { ($1.id, "n\($0)") })
    }

    func mermaid() -> String {
        let names = nodeNames
        var lines = ["flowchart LR"]
        for timer in timerNames {
            lines.append("    \(timer.name)([\"\(timer.timer)\"])")
        }
        for node in dataflow.nodes {
            lines.append("    \(names[node.id]!)[\"\(node.id)\"]")
        }
        for edge in edges(nodeName: names) {
            lines.append("    \(edge.from) -- \"\(edge.label)\" --> \(edge.to)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func dot() -> String {
        let names = nodeNames
        var lines = ["digraph dataflow {", "    rankdir=LR;", "    node [shape=box];"]
        for timer in timerNames {
            lines.append("    \(timer.name) [label=\(quoted(timer.timer.description)), shape=ellipse, style=dashed];")
        }
        for node in dataflow.nodes {
            lines.append("    \(names[node.id]!) [label=\(quoted(node.id))];")
        }
        for edge in edges(nodeName: names) {
            lines.append("    \(edge.from) -> \(edge.to) [label=\(quoted(edge.label))];")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

extension String {
    fileprivate func replacingDots() -> String { replacingOccurrences(of: ".", with: "_") }
}
