// Consumers that join a running dataflow and leave it: inspectors (`apus topic`) and nodes added
// with `apus node add`. A joiner gets an inbox of its own; once it is ready, each producer it
// takes input from is told to add an edge to it (`addEdge`), with a holder bit no other edge of
// that producer uses. When it leaves, what it held or had queued is reclaimed and the producers
// drop the edge (`removeEdge`), which frees the bit. The producers never restart.
import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

extension Supervisor {
    /// Adds a node to the running dataflow. `channel` is an inspector's own connection; an added
    /// node is spawned instead. Throws when it cannot join, saying why.
    func join(_ descriptor: NodeDescriptor, origin: NodeRuntime.Origin, channel: ControlChannel? = nil) throws(SupervisorError)
        -> NodeRuntime
    {
        guard started else { throw SupervisorError("the dataflow is still starting; try again once it runs") }
        guard !stopping else { throw SupervisorError("the dataflow is stopping") }
        var streams: [RunPlan.Stream] = []
        var taken: [RunPlan.ProducerKey: Set<Int>] = [:]
        for (index, input) in descriptor.inputs.enumerated() {
            guard case .output(let source, let outputID) = input.source else { continue }
            guard let producer = liveNode(source), producer.origin != .attached,
                let output = producer.plan.descriptor.outputs.firstIndex(of: outputID)
            else {
                throw SupervisorError("input '\(input.id)': the running dataflow has no output '\(source)/\(outputID)'")
            }
            let producerDescriptor = producer.plan.descriptor
            let fromDaemon = producerDescriptor.sendStdoutAs == outputID || producerDescriptor.sendLogsAs == outputID
            let key: RunPlan.ProducerKey = fromDaemon ? .stdout(producer.index) : .node(producer.index)
            let used = taken[key, default: bitsInUse(by: key)]
            let limit = (fromDaemon ? producer.plan.stdoutPool : producer.plan.pool).holderWords * 64
            guard let bit = (1..<limit).first(where: { !used.contains($0) }) else {
                throw SupervisorError(
                    "output '\(source)/\(outputID)' already feeds \(limit - 1) consumers, as many as its pools can track")
            }
            taken[key] = used.union([bit])
            streams.append(RunPlan.Stream(input: index, producer: key, output: output, bit: bit))
        }
        let plan = RunPlan.joining(descriptor, streams: streams)
        let inbox: Inbox
        do {
            inbox = try Inbox(layout: plan.inbox, name: descriptor.id)
        } catch {
            throw SupervisorError("cannot create its inbox: \(error)")
        }
        // An inspector that left is forgotten: its place goes to the next inspector, so a day of
        // `apus topic echo` does not pile up inboxes. (Nothing refers to it once it is unwired.)
        let place =
            origin == .attached
            ? nodes.firstIndex { $0.origin == .attached && $0.state == .finished && $0.unwired } ?? nodes.count : nodes.count
        let node = NodeRuntime(index: place, plan: plan, inbox: inbox, origin: origin)
        if place == nodes.count { nodes.append(node) } else { nodes[place] = node }
        if let channel {
            node.channel = channel
            node.state = .spawned
            node.startedAt = monotonicNanoseconds()
            node.lastHeard = node.startedAt
            return node
        }
        node.log = open(logPath(of: node), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if descriptor.sendStdoutAs != nil || descriptor.sendLogsAs != nil {
            do {
                node.stdoutPublisher = try makeStdoutPublisher(for: node)
            } catch {
                console.note("node '\(node.id)': its stdout cannot be published (\(error))")
            }
        }
        console.note("node '\(node.id)' joins the dataflow")
        spawn(node)
        return node
    }

    /// The node called `id` that is running or will be (the last one, if one left and another
    /// of the same id joined since).
    func liveNode(_ id: String) -> NodeRuntime? {
        nodes.last { $0.id == id && ($0.state != .finished || $0.origin == .planned) }
    }

    /// The holder bits of `key`'s pools that an edge uses.
    func bitsInUse(by key: RunPlan.ProducerKey) -> Set<Int> {
        var bits = Set<Int>()
        for node in nodes where node.holdsBits {
            for stream in node.plan.streams where stream.producer == key { bits.insert(stream.bit) }
        }
        return bits
    }

    /// The edges of output `output` of `producer` that lead to consumers that joined and are wired.
    func joinedEdges(of producer: NodeRuntime, output: Int) -> [RunPlan.Edge] {
        var edges: [RunPlan.Edge] = []
        for consumer in nodes where consumer.origin != .planned && consumer.wired && !consumer.unwired {
            for (ring, stream) in consumer.plan.streams.enumerated()
            where stream.producer == .node(producer.index) && stream.output == output {
                edges.append(RunPlan.Edge(consumer: consumer.index, ring: ring, bit: stream.bit))
            }
        }
        return edges
    }

    /// Every edge `producer`'s outputs feed: the plan's and those of consumers that joined.
    func allEdges(of producer: NodeRuntime) -> [[RunPlan.Edge]] {
        producer.plan.outputs.indices.map { producer.plan.outputs[$0] + joinedEdges(of: producer, output: $0) }
    }

    /// A joined node is ready: its producers start feeding it. An input whose producer has ended
    /// is closed at once.
    func wire(_ node: NodeRuntime) {
        guard node.origin != .planned, !node.wired else { return }
        node.wired = true
        for (ring, stream) in node.plan.streams.enumerated() {
            let producer = nodes[stream.producer.node]
            guard producer.state != .finished else {
                Reclamation.closeEdge(node.inbox, ring: ring)
                inputClosed(ring, of: node)
                continue
            }
            switch stream.producer {
            case .node:
                // A producer that is not connected now gets the edge with its setup.
                post(
                    to: producer, .addEdge(output: stream.output, bit: stream.bit, ring: ring, layout: node.inbox.layout),
                    fds: [node.inbox.segment.fd])
            case .stdout:
                let target = EdgeTarget(inbox: node.inbox, ring: ring, bit: stream.bit)
                let output = producer.plan.descriptor.sendLogsAs == producer.plan.descriptor.outputs[stream.output] ? 1 : 0
                do {
                    if producer.stdoutPublisher == nil { producer.stdoutPublisher = try makeStdoutPublisher(for: producer) }
                    try producer.stdoutPublisher?.addEdge(output: output, target: target)
                } catch {
                    console.note("node '\(node.id)': cannot take the lines of '\(producer.id)' (\(error))")
                    Reclamation.closeEdge(node.inbox, ring: ring)
                    inputClosed(ring, of: node)
                }
            }
        }
    }

    /// A joined node has left (its inputs are reclaimed already): its producers drop its edges.
    func unwire(_ node: NodeRuntime) {
        guard node.origin != .planned, !node.unwired else { return }
        defer { node.unwired = true }
        guard node.wired else { return }
        for stream in node.plan.streams {
            let producer = nodes[stream.producer.node]
            switch stream.producer {
            case .node: post(to: producer, .removeEdge(bit: stream.bit))
            case .stdout: producer.stdoutPublisher?.removeEdge(bit: stream.bit)
            }
        }
    }

    /// `apus node remove`: STOP, then SIGKILL once the grace period is over.
    func remove(_ id: String) throws(SupervisorError) {
        guard let node = liveNode(id), node.state != .finished else {
            throw SupervisorError(
                "no running node '\(id)' (running: \(nodes.filter { $0.state != .finished }.map(\.id).joined(separator: ", ")))")
        }
        guard node.origin != .attached else { throw SupervisorError("'\(id)' is an inspector: it leaves when it is stopped") }
        node.removing = true
        console.note("removing node '\(node.id)'")
        if case .waiting = node.state {
            finish(node, failed: false, message: "removed")
        } else if node.isAlive {
            if !node.stopSent { node.stopSent = post(to: node, .stop) }
            node.killAt = monotonicNanoseconds() &+ seconds(options.grace)
        }
    }

    /// An inspector's connection closed (or failed): it has left.
    func inspectorLeft(_ node: NodeRuntime) {
        guard node.origin == .attached, node.state != .finished else { return }
        node.channel = nil
        finish(node, failed: false, message: "left")
    }

    /// Whether every inspector has left (called once every node has ended): they get the grace
    /// period from then.
    func inspectorsHaveLeft(now: UInt64) -> Bool {
        guard nodes.contains(where: { $0.origin == .attached && $0.state != .finished }) else { return true }
        if inspectorsDeadline == nil { inspectorsDeadline = now &+ seconds(options.grace) }
        return now >= inspectorsDeadline!
    }
}
