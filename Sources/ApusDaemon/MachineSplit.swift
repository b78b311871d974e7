// A dataflow across machines as each machine runs it: its own nodes, and bridges for the edges
// that cross. Every machine computes its part from the same file, so they agree without talking.
import ApusDataflow
import ApusNetwork

/// Why nodes chosen by labels have no machine.
public struct PlacementError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum MachineSplit {
    /// The machine `node` runs on: its `deploy.machine`, or `local` (where the dataflow was started).
    public static func machine(of node: NodeDescriptor, local: String) -> String {
        node.deployment.local ? local : node.deployment.machine ?? local
    }

    /// Where the nodes chosen by `deploy.labels` run, given the labels of this machine (`here`,
    /// where the dataflow was started) and of each daemon found (`daemons`, machine to labels): a
    /// node with labels and no machine runs here when this machine has them all, else on the
    /// first machine by name that has; one whose machine is named (or `local`) must find them
    /// there. Returns node id to machine; the error names the node, its labels and what each
    /// machine has.
    public static func place(
        _ dataflow: DataflowDescriptor, here: String, labels: [String: String], daemons: [String: [String: String]]
    ) throws(PlacementError) -> [String: String] {
        var machines = daemons
        machines[here] = labels
        var placements: [String: String] = [:]
        for node in dataflow.nodes where !node.deployment.labels.isEmpty {
            let wanted = node.deployment.labels
            let named = node.deployment.local || node.deployment.machine != nil ? machine(of: node, local: here) : nil
            if let named {
                guard let theirs = machines[named] else { continue }  // a missing machine is reported by name
                guard has(theirs, wanted) else {
                    throw PlacementError(
                        "node '\(node.id)': machine '\(named)' has labels \(describe(theirs)), not all of \(describe(wanted))")
                }
                continue
            }
            let candidates = [here] + daemons.keys.sorted().filter { $0 != here }
            guard let chosen = candidates.first(where: { has(machines[$0] ?? [:], wanted) }) else {
                let found = candidates.map { "'\($0)' \(describe(machines[$0] ?? [:]))" }.joined(separator: ", ")
                throw PlacementError("node '\(node.id)': no machine has labels \(describe(wanted)) (machines: \(found))")
            }
            placements[node.id] = chosen
        }
        return placements
    }

    /// Whether `labels` include every one of `wanted`.
    public static func has(_ labels: [String: String], _ wanted: [String: String]) -> Bool {
        wanted.allSatisfy { labels[$0.key] == $0.value }
    }

    /// `{arch=arm64, gpu=true}`, sorted.
    public static func describe(_ labels: [String: String]) -> String {
        "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + "}"
    }

    /// `dataflow` with each node of `placements` on its machine.
    public static func placed(_ dataflow: DataflowDescriptor, _ placements: [String: String]) -> DataflowDescriptor {
        var placed = dataflow
        for index in placed.nodes.indices {
            guard let machine = placements[placed.nodes[index].id] else { continue }
            placed.nodes[index].deployment.machine = machine
            placed.nodes[index].deployment.local = false
        }
        return placed
    }

    /// The machines other than `local` that `dataflow` runs nodes on, in the order nodes name them.
    public static func remoteMachines(_ dataflow: DataflowDescriptor, local: String) -> [String] {
        var machines: [String] = []
        for node in dataflow.nodes {
            let machine = machine(of: node, local: local)
            if machine != local, !machines.contains(machine) { machines.append(machine) }
        }
        return machines
    }

    /// What `machine` runs of `dataflow` in run `run`: its nodes; a bridge-out node (id
    /// `apus-bridge-out`) taking each of their outputs read elsewhere, with backpressure; and, for
    /// each remote node whose outputs its nodes read, a bridge-in node with that node's id and
    /// those outputs. An output read with `backpressure` anywhere crosses with every message (the
    /// sender keeps at most the largest queue_size beyond what each reading machine passed on);
    /// otherwise with the newest queue_size. `executable` runs the bridges. The bridges, and the
    /// nodes that read only from other machines (unless their `wait` says otherwise), sleep while
    /// they wait: spinning, they take the CPUs that the hop's other processes and DDS's threads
    /// need (docs/performance.md, "Across machines").
    public static func part(
        of dataflow: DataflowDescriptor, machine: String, local: String, run: String, domain: UInt32, executable: String
    ) -> DataflowDescriptor {
        let machineOf = Dictionary(
            dataflow.nodes.map { ($0.id, Self.machine(of: $0, local: local)) }, uniquingKeysWith: { first, _ in first })
        // Per crossing output (node/output): the machines that read it, and how.
        struct Crossing {
            var node: String
            var output: String
            var readers: [String] = []
            var everyMessage = false
            var depth = 1
        }
        var crossings: [String: Crossing] = [:]
        var order: [String] = []
        for consumer in dataflow.nodes {
            let reader = machineOf[consumer.id] ?? local
            for input in consumer.inputs {
                guard case .output(let node, let output) = input.source, let producer = machineOf[node], producer != reader else {
                    continue
                }
                let key = "\(node)/\(output)"
                if crossings[key] == nil {
                    crossings[key] = Crossing(node: node, output: output)
                    order.append(key)
                }
                if !crossings[key]!.readers.contains(reader) { crossings[key]!.readers.append(reader) }
                crossings[key]!.everyMessage = crossings[key]!.everyMessage || input.queuePolicy == .backpressure
                crossings[key]!.depth = max(crossings[key]!.depth, input.queueSize)
            }
        }
        func delivery(_ crossing: Crossing) -> DDSDelivery {
            crossing.everyMessage ? .everyMessage(buffered: crossing.depth) : .newest(crossing.depth)
        }

        var part = dataflow
        part.nodes = dataflow.nodes.filter { machineOf[$0.id] == machine }
        // A node that reads only what comes from other machines sleeps while it waits, unless its
        // `wait` says otherwise: a message across machines takes tens of microseconds, longer
        // than a wake-up, and a node spinning for it takes a CPU from the DDS threads carrying it.
        for index in part.nodes.indices where part.nodes[index].wait == nil {
            let producers = part.nodes[index].inputs.compactMap { input -> String? in
                if case .output(let node, _) = input.source { return node }
                return nil
            }
            if !producers.isEmpty, producers.allSatisfy({ (machineOf[$0] ?? local) != machine }) { part.nodes[index].wait = .sleep }
        }
        // Out: every crossing output produced here, read on other machines. Its node writes each
        // message to the topic itself (RemoteOutputs.variable says which, and where); the
        // bridge-out takes them too, keeps them until passed on, and sends again what is missing.
        let outgoing = order.compactMap { crossings[$0] }.filter { machineOf[$0.node] == machine }
        if !outgoing.isEmpty {
            let bridgeID = uniqueID("apus-bridge-out", in: dataflow)
            var bridge = NodeDescriptor(id: bridgeID, path: executable, resolvedPath: executable)
            bridge.args = ["bridge-out", "--run", run, "--domain", String(domain)]
            bridge.wait = .sleep
            for (index, crossing) in outgoing.enumerated() {
                let input = "out\(index)"
                bridge.inputs.append(
                    InputDescriptor(
                        id: input, source: .output(node: crossing.node, output: crossing.output), queueSize: crossing.depth,
                        queuePolicy: .backpressure))
                bridge.args += [
                    "--topic", BridgeTopic(id: input, delivery: delivery(crossing), machines: crossing.readers).description,
                ]
            }
            bridge.description = "sends \(outgoing.map { "\($0.node)/\($0.output)" }.joined(separator: ", ")) to other machines"
            for index in part.nodes.indices {
                let topics = outgoing.filter { $0.node == part.nodes[index].id }.map {
                    BridgeTopic(id: $0.output, delivery: delivery($0), machines: $0.readers)
                }
                guard !topics.isEmpty else { continue }
                let value = RemoteOutputsVariable(run: run, domain: domain, bridge: bridgeID, topics: topics).description
                part.nodes[index].env.removeAll { $0.name == RemoteOutputsVariable.name }
                part.nodes[index].env.append(EnvVariable(name: RemoteOutputsVariable.name, value: .string(value)))
            }
            part.nodes.append(bridge)
        }
        // In: per remote node read here, a stand-in with its id and the outputs read here.
        let incoming = order.compactMap { crossings[$0] }.filter { machineOf[$0.node] != machine && $0.readers.contains(machine) }
        var standIns: [String] = []
        for crossing in incoming where !standIns.contains(crossing.node) { standIns.append(crossing.node) }
        for node in standIns {
            let outputs = incoming.filter { $0.node == node }
            let remote = machineOf[node] ?? local
            var bridge = NodeDescriptor(id: node, path: executable, resolvedPath: executable)
            bridge.args = ["bridge-in", "--run", run, "--domain", String(domain), "--machine", remote, "--here", machine]
            bridge.wait = .sleep
            for crossing in outputs {
                bridge.args += ["--topic", BridgeTopic(id: crossing.output, delivery: delivery(crossing), machines: []).description]
            }
            bridge.outputs = outputs.map(\.output)
            bridge.description = "receives \(node)'s outputs from machine '\(remote)'"
            part.nodes.append(bridge)
        }
        return part
    }

    /// Labels given as `--label KEY=VALUE` options; the error names the one malformed.
    public static func labels(fromArguments arguments: [String]) throws(PlacementError) -> [String: String] {
        var labels: [String: String] = [:]
        for argument in arguments {
            let halves = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard halves.count == 2, Deployment.isLabel(halves[0]), Deployment.isLabel(halves[1]) else {
                throw PlacementError(
                    "--label '\(argument)': expected KEY=VALUE, each of letters, digits, '_', '.', '/' and '-' (at most 64)")
            }
            labels[halves[0]] = halves[1]
        }
        return labels
    }

    /// Placements as command-line values (`NODE=MACHINE`), and back.
    public static func placementArguments(_ placements: [String: String]) -> [String] {
        placements.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    public static func placements(_ arguments: [String]) -> [String: String] {
        var placements: [String: String] = [:]
        for argument in arguments {
            let halves = argument.split(separator: "=", maxSplits: 1).map(String.init)
            if halves.count == 2 { placements[halves[0]] = halves[1] }
        }
        return placements
    }

    static func uniqueID(_ base: String, in dataflow: DataflowDescriptor) -> String {
        var id = base
        var number = 1
        while dataflow.nodes.contains(where: { $0.id == id }) {
            number += 1
            id = "\(base)-\(number)"
        }
        return id
    }
}
