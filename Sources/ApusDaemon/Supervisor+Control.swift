// The nodes' control sockets: hello, setup, pools relayed to consumers, the start barrier.
import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

extension Supervisor {
    func readControl(_ node: NodeRuntime) {
        guard let channel = node.channel else { return }
        let message: NodeMessage
        let fds: [Int32]
        do {
            (message, fds) = try channel.receiveMessage()
        } catch .disconnected {
            node.channel = nil
            inspectorLeft(node)
            return
        } catch {
            console.note("node '\(node.id)': \(error); closing its control socket")
            node.channel = nil
            inspectorLeft(node)
            return
        }
        node.lastHeard = monotonicNanoseconds()
        switch message {
        case .alive:
            break  // heard: that is all (health_check_timeout)
        case .hello(let id, let pid) where node.state == .spawned:
            if node.origin == .attached { node.attachedPID = Int32(clamping: pid) }
            guard id == node.id else {
                console.note("node '\(node.id)' says it is '\(id)'; closing its control socket")
                node.channel = nil
                return
            }
            sendSetup(node)
            // A node restarted after all its producers ended has nothing left to wait for.
            if stopping || isFinished(node), !node.stopSent { node.stopSent = post(to: node, .stop) }
        case .pool(let producer, let index, let layout)
        where producer == RunPlan.ProducerKey.node(node.index).wire && fds.count == 2:
            do {
                let pool = try MappedPool(index: index, layout: layout, dataFD: fds[0], controlFD: fds[1])
                node.pools.append(pool)
                relay(pool: index, layout: layout, fds: [pool.data.fd, pool.control.fd], producer: .node(node.index))
            } catch {
                console.note("node '\(node.id)' announced an unusable pool: \(error)")
            }
        case .ready where node.state == .connected:
            node.state = .ready
            wire(node)
            if started { post(to: node, .start) } else { checkStartBarrier() }
        case .closeOutput(let output) where output < node.plan.outputs.count:
            closeEdges(allEdges(of: node)[output])
        case .closeInput(let ring) where ring < node.plan.streams.count:
            node.timedOutRings.insert(ring)
            inputClosed(ring, of: node)
        case .stopDataflow(let reason) where node.plan.descriptor.isRuntime:
            console.note("node '\(node.id)': \(reason); stopping the dataflow")
            beginStop()
        default:
            for fd in fds { close(fd) }
            console.note("node '\(node.id)' sent an unexpected message (kind \(message.kind)); ignored")
        }
    }

    func sendSetup(_ node: NodeRuntime) {
        let descriptor = node.plan.descriptor
        // Timers as they are; every other input is one of the plan's streams, filled in below.
        var inputs = descriptor.inputs.map { input in
            var period: UInt64 = 0
            if case .timer(let timer) = input.source { period = timer.periodNanoseconds }
            return NodeSetup.Input(
                id: input.id, source: input.source.description, kind: .timer(periodNanoseconds: period),
                timeoutNanoseconds: input.inputTimeout.map(seconds) ?? 0)
        }
        for (ring, stream) in node.plan.streams.enumerated() {
            inputs[stream.input].kind = .stream(
                producer: stream.producer.wire, producerNode: nodes[stream.producer.node].id, ring: ring,
                bit: stream.bit)
        }
        var peers: [Int] = []
        let outputs = zip(descriptor.outputs, allEdges(of: node)).map { id, edges in
            NodeSetup.Output(
                id: id,
                edges: edges.map { edge in
                    if !peers.contains(edge.consumer) { peers.append(edge.consumer) }
                    return NodeSetup.Edge(
                        peer: peers.firstIndex(of: edge.consumer)!, ring: edge.ring, bit: edge.bit, consumer: nodes[edge.consumer].id)
                })
        }
        let setup = NodeSetup(
            node: node.id, producer: RunPlan.ProducerKey.node(node.index).wire, inputs: inputs,
            inbox: node.inbox.layout, outputs: outputs,
            peerInboxes: peers.map { nodes[$0].inbox.layout }, pool: node.plan.pool, largeSlotCount: node.plan.largeSlotCount,
            maxSampleSize: RunPlan.maxSampleSize, firstPoolIndex: node.poolIndexBase + node.pools.count,
            backpressureTimeoutNanoseconds: 5_000_000_000)
        guard let channel = node.channel else { return }
        do {
            try channel.send(.setup(setup), fds: [node.inbox.segment.fd] + peers.map { nodes[$0].inbox.segment.fd })
            node.state = .connected
            for producer in Set(node.plan.streams.map(\.producer)) {
                for pool in pools(ofProducer: producer) {
                    try channel.send(
                        .pool(producer: producer.wire, index: pool.index, layout: pool.layout),
                        fds: [pool.dataFD, pool.controlFD])
                }
            }
        } catch {
            console.note("node '\(node.id)': cannot send its setup: \(error)")
            node.channel = nil
        }
    }

    func pools(ofProducer key: RunPlan.ProducerKey) -> [(index: Int, layout: PoolLayout, dataFD: Int32, controlFD: Int32, view: PoolView)] {
        switch key {
        case .node(let index):
            return nodes[index].pools.map { ($0.index, $0.view.layout, $0.data.fd, $0.control.fd, $0.view) }
        case .stdout(let index):
            return (nodes[index].stdoutPublisher?.pools ?? []).map { ($0.index, $0.layout, $0.data.fd, $0.control.fd, $0.view) }
        }
    }

    /// Makes a producer's new pool known to every connected consumer it feeds.
    func relay(pool index: Int, layout: PoolLayout, fds: [Int32], producer: RunPlan.ProducerKey) {
        for consumer in nodes where consumer.plan.streams.contains(where: { $0.producer == producer }) {
            post(to: consumer, .pool(producer: producer.wire, index: index, layout: layout), fds: fds)
        }
    }

    /// Sends a control message and wakes the node through its doorbell. False when the node cannot
    /// get it: not connected yet, or no more. A socket that fails is closed (the node then sees
    /// the daemon gone and stops); a disconnection says nothing, as the node's exit will.
    @discardableResult
    func post(to node: NodeRuntime, _ message: NodeMessage, fds: [Int32] = []) -> Bool {
        guard let channel = node.channel, node.state == .connected || node.state == .ready else { return false }
        do {
            try channel.send(message, fds: fds)
        } catch .disconnected {
            node.channel = nil
            inspectorLeft(node)
            return false
        } catch {
            console.note("node '\(node.id)': cannot send it \(message.kind): \(error); closing its control socket")
            node.channel = nil
            inspectorLeft(node)
            return false
        }
        node.inbox.postControl()
        return true
    }

    func checkStartBarrier() {
        guard !started, !stopping else { return }
        let waiting = nodes.filter {
            switch $0.state {
            case .ready, .finished: false
            default: true
            }
        }
        guard waiting.isEmpty else { return }
        started = true
        for node in nodes { post(to: node, .start) }
    }
}
