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

    /// Where an input or output of `node` is drawn: the node, or in a runtime node the operator
    /// it belongs to; and the id as that vertex knows it.
    private func vertex(_ node: NodeDescriptor, _ id: String, nodeName: [String: String]) -> (name: String, id: String) {
        let name = nodeName[node.id]!
        guard node.isRuntime else { return (name, id) }
        if node.isSingleOperator { return ("\(name)_0", id) }
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        let index = node.operators.firstIndex { $0.id == parts[0] } ?? 0
        return ("\(name)_\(index)", parts.count == 2 ? parts[1] : id)
    }

    /// Edges keyed by internal names; nodes are `n0`, `n1`, … (operators `n1_0`, …) so any id is
    /// safe in both formats.
    private func edges(nodeName: [String: String]) -> [Edge] {
        let byID = Dictionary(dataflow.nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var edges: [Edge] = []
        for node in dataflow.nodes {
            for input in node.inputs {
                let target = vertex(node, input.id, nodeName: nodeName)
                var label = target.id
                let from: String
                switch input.source {
                case .output(let producer, let output):
                    let source = vertex(byID[producer]!, output, nodeName: nodeName)
                    from = source.name
                    if source.id != target.id { label = "\(source.id) → \(target.id)" }
                case .timer(let timer):
                    from = timerName(timer)
                }
                var settings: [String] = []
                if input.queueSize != InputDescriptor.defaultQueueSize { settings.append("queue \(input.queueSize)") }
                if input.queuePolicy != .dropOldest { settings.append(input.queuePolicy.rawValue) }
                if let timeout = input.inputTimeout { settings.append("timeout \(formatNumber(timeout)) s") }
                if !settings.isEmpty { label += " (\(settings.joined(separator: ", ")))" }
                edges.append(Edge(from: from, to: target.name, label: label))
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
            let name = names[node.id]!
            guard node.isRuntime else {
                lines.append("    \(name)[\"\(node.id)\"]")
                continue
            }
            // A runtime node is a box around its operators.
            lines.append("    subgraph \(name)[\"\(node.id)\"]")
            for (index, described) in node.operators.enumerated() {
                lines.append("        \(name)_\(index)[\"\(described.id)\"]")
            }
            lines.append("    end")
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
            let name = names[node.id]!
            guard node.isRuntime else {
                lines.append("    \(name) [label=\(quoted(node.id))];")
                continue
            }
            lines.append("    subgraph cluster_\(name) {")
            lines.append("        label=\(quoted(node.id));")
            for (index, described) in node.operators.enumerated() {
                lines.append("        \(name)_\(index) [label=\(quoted(described.id))];")
            }
            lines.append("    }")
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
