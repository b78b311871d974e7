// Node exits: restarts, the INPUT_CLOSED and NODE_FAILED that consumers are told, reclaimed inputs.
import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

extension Supervisor {
    func reapChildren() {
        while true {
            var signaled: Int32 = 0
            var value: Int32 = 0
            let pid = apussys_reap(-1, 0, &signaled, &value)
            guard pid > 0 else { return }
            guard let node = nodes.first(where: { $0.pid == pid }) else { continue }
            exited(node, signaled: signaled != 0, value: value)
        }
    }

    func exited(_ node: NodeRuntime, signaled: Bool, value: Int32) {
        if node.stdout >= 0 { readOutput(node, stderr: false) }
        if node.stderr >= 0 { readOutput(node, stderr: true) }
        let status = describeExit(signaled: signaled, value: value)
        writeLog(node, "--- \(status)")
        let failed = signaled || value != 0
        // What the node started in its process group (a subprocess) does not outlive it.
        kill(-node.pid, SIGKILL)
        guardian?.forget(node.pid)
        node.detach()
        let reason = node.ladderReason
        node.ladderReason = nil  // a restarted node starts with a clean record
        let policy = node.plan.descriptor.restartPolicy
        let maxRestarts = node.plan.descriptor.maxRestarts
        // restart_window: max_restarts counts the restarts since the first one of the current
        // window; once the window has passed, the count starts again (N restarts per M seconds).
        if let window = node.plan.descriptor.restartWindow, let start = node.restartWindowStart,
            monotonicNanoseconds() &- start > seconds(window)
        {
            node.restartWindowStart = nil
            node.restartsInWindow = 0
            node.nextRestartDelay = node.plan.descriptor.restartDelay ?? 0
        }
        if node.removing {
            console.note("node '\(node.id)' removed (\(status))")
            finish(node, failed: false, message: "removed")
            return
        }
        let restart =
            !stopping && (policy == .always || (policy == .onFailure && failed))
            && (maxRestarts == 0 || node.restartsInWindow < maxRestarts)
        if restart {
            suspendInputs(of: node)
            // The next incarnation makes pools of its own; these close here (a day of restarts
            // must not pile up descriptors).
            node.poolIndexBase += node.pools.count
            node.pools = []
            node.restarts += 1
            node.restartsInWindow += 1
            if node.restartWindowStart == nil { node.restartWindowStart = monotonicNanoseconds() }
            RunEvent.send(.restarted(node: node.id), to: options.eventsFD)
            let delay = node.nextRestartDelay
            node.nextRestartDelay = min(max(delay * 2, delay), node.plan.descriptor.maxRestartDelay ?? .infinity)
            console.note(
                "node '\(node.id)' \(status); restarting (\(node.restartsInWindow)\(maxRestarts > 0 ? " of \(maxRestarts)" : "")"
                    + (node.plan.descriptor.restartWindow.map { " in \(formatSeconds($0)) s" } ?? "") + ")"
                    + (delay > 0 ? " in \(formatSeconds(delay)) s" : ""))
            node.state = .waiting(until: monotonicNanoseconds() &+ seconds(delay))
            return
        }
        if failed && node.failure == nil {
            node.failure = reason.map { "\($0); \(status)" } ?? status
            console.note(
                "node '\(node.id)' \(node.failure!)"
                    + (node.restarts > 0 ? " after \(node.restarts) restart\(node.restarts == 1 ? "" : "s")" : ""))
        }
        finish(node, failed: failed, message: status)
    }

    /// The node is gone for good: its consumers see NODE_FAILED (if it failed) and INPUT_CLOSED.
    func finish(_ node: NodeRuntime, failed: Bool, message: String) {
        node.state = .finished
        releaseInputs(of: node)
        unwire(node)
        if failed {
            for key in [RunPlan.ProducerKey.node(node.index), .stdout(node.index)] {
                for consumer in nodes where consumer.plan.streams.contains(where: { $0.producer == key }) {
                    post(to: consumer, .producerFailed(producer: key.wire, message: "node '\(node.id)' \(message)"))
                }
            }
        }
        closeEdges(Array(allEdges(of: node).joined()))
        node.stdoutPublisher?.closeOutputs()
        markClosed(node.plan.stdoutEdges + node.plan.logEdges)
        finishWaitingConsumersWithNothingLeft()
        checkStartBarrier()
    }

    /// A node waiting to be restarted whose producers have all finished would only get STOP once
    /// restarted: it is not restarted, and the run need not wait out its restart delay.
    func finishWaitingConsumersWithNothingLeft() {
        for consumer in nodes where !consumer.plan.streams.isEmpty {
            guard case .waiting = consumer.state, consumer.restarts > 0 else { continue }
            guard consumer.plan.streams.allSatisfy({ nodes[$0.producer.node].state == .finished }) else { continue }
            // What a `backpressure` input kept for it is still delivered: it is restarted for that.
            guard consumer.inbox.rings.allSatisfy({ !$0.isConsumerRestarting || $0.queued == 0 }) else { continue }
            console.note("node '\(consumer.id)' is not restarted: every node it takes input from has ended")
            finish(consumer, failed: false, message: "ended")
        }
    }

    /// A consumer is gone: its producers stop feeding it, and what it held or had queued returns.
    func releaseInputs(of node: NodeRuntime) {
        for (ring, stream) in node.plan.streams.enumerated() {
            node.lostQueued[ring] += Reclamation.releaseEdge(
                node.inbox.rings[ring], bit: stream.bit, pools: pools(ofProducer: stream.producer).map(\.view))
        }
    }

    /// A consumer is restarted: its `backpressure` inputs from a node keep what is queued (the
    /// producer moves it into the new inbox, and waits if the ring is full); the others are
    /// released as if it were gone.
    func suspendInputs(of node: NodeRuntime) {
        for (ring, stream) in node.plan.streams.enumerated() {
            if node.inbox.rings[ring].layout.policy == .backpressure, case .node = stream.producer {
                Reclamation.suspendEdge(node.inbox.rings[ring])
            } else {
                node.lostQueued[ring] += Reclamation.releaseEdge(
                    node.inbox.rings[ring], bit: stream.bit, pools: pools(ofProducer: stream.producer).map(\.view))
            }
        }
    }

    /// Moves what a suspended ring of the node's previous inbox has queued into its new inbox
    /// (see `suspendInputs`); only while nobody produces into either.
    func moveSuspended(_ ring: Int, of node: NodeRuntime, stream: RunPlan.Stream) {
        guard let old = node.retiredInbox?.rings[ring], old.isConsumerRestarting, !old.isConsumerGone else { return }
        let pools = Dictionary(uniqueKeysWithValues: pools(ofProducer: stream.producer).map { ($0.index, $0.view) })
        Reclamation.move(from: old, to: node.inbox.rings[ring], bit: stream.bit, pools: pools)
    }

    /// What input `ring` of the node has lost so far in all its incarnations: evicted from a full
    /// `drop_oldest` queue, and sent while it was gone.
    func losses(of node: NodeRuntime, ring: Int) -> (dropped: UInt64, skipped: UInt64) {
        let inboxes = [node.retiredInbox, node.inbox].compactMap { $0 }
        return (
            inboxes.reduce(node.earlierDropped[ring]) { $0 + $1.rings[ring].dropped },
            inboxes.reduce(node.earlierSkipped[ring]) { $0 + $1.rings[ring].skipped }
        )
    }

    /// Says, at the end of the run, how many messages each input of the node lost in all its
    /// incarnations, and how: evicted from a full `drop_oldest` queue, queued for it when it died,
    /// or sent while it was gone (restarting, or ended before its producer). No loss goes unseen.
    func reportDrops(of node: NodeRuntime) {
        for (ring, stream) in node.plan.streams.enumerated() {
            let (dropped, skipped) = losses(of: node, ring: ring)
            let queued = UInt64(node.lostQueued[ring])
            guard dropped + skipped + queued > 0 else { continue }
            let input = node.plan.descriptor.inputs[stream.input]
            var parts: [String] = []
            if dropped > 0 {
                var text =
                    "\(dropped) message\(dropped == 1 ? "" : "s") dropped "
                    + "(queue_size \(input.queueSize) full, drop_oldest kept the newest; a larger queue_size or "
                    + "queue_policy: backpressure keeps them all)"
                if node.timedOutRings.contains(ring) {
                    text += "; its input_timeout of \(formatSeconds(input.inputTimeout ?? 0)) s closed it, and what came after was dropped"
                }
                parts.append(text)
            }
            if queued > 0 { parts.append("\(queued) message\(queued == 1 ? " was" : "s were") queued for it when it died") }
            if skipped > 0 { parts.append("\(skipped) message\(skipped == 1 ? " was" : "s were") sent while it was gone") }
            let text = "node '\(node.id)' input '\(input.id)': " + parts.joined(separator: "; ")
            console.note(text)
            writeLog(node, "--- \(text)")
        }
    }

    func closeEdges(_ edges: [RunPlan.Edge]) {
        for edge in edges { Reclamation.closeEdge(nodes[edge.consumer].inbox, ring: edge.ring) }
        markClosed(edges)
    }

    /// Records closed inputs; a node whose stream inputs have all closed gets STOP (its timers alone
    /// would keep it running for nothing), unless `exit_when_nodes_finish: false`.
    func markClosed(_ edges: [RunPlan.Edge]) {
        for edge in edges { inputClosed(edge.ring, of: nodes[edge.consumer]) }
    }

    func inputClosed(_ ring: Int, of consumer: NodeRuntime) {
        consumer.closedRings.insert(ring)
        // An inspector ends by itself once it has taken what is queued: STOP would come first.
        if isFinished(consumer), !consumer.stopSent, consumer.origin != .attached {
            consumer.stopSent = post(to: consumer, .stop)
        }
    }

    /// Whether the node has nothing left to do: its stream inputs have all closed, and no timer
    /// keeps it running (`exit_when_nodes_finish: false` lets timers do so, as dora's default does).
    func isFinished(_ node: NodeRuntime) -> Bool {
        node.allInputsClosed && (plan.dataflow.exitWhenNodesFinish || !node.plan.descriptor.inputs.contains { $0.source.isTimer })
    }

    /// Starts a node again after a failure, with a fresh inbox its producers are pointed at.
    func respawn(_ node: NodeRuntime) {
        if !node.plan.streams.isEmpty {
            do {
                // Two restarts on, no producer counts into an inbox any more: fold its counters and
                // let it go (one kept inbox per node, however many restarts).
                if let older = node.retiredInbox {
                    for ring in older.rings.indices {
                        node.earlierDropped[ring] += older.rings[ring].dropped
                        node.earlierSkipped[ring] += older.rings[ring].skipped
                    }
                }
                node.retiredInbox = node.inbox
                node.inbox = try Inbox(layout: node.plan.inbox, name: node.id)
            } catch {
                fail(node, "cannot create its inbox for the restart: \(error)")
                return
            }
            node.closedRings = []
            node.timedOutRings = []
            for (ring, stream) in node.plan.streams.enumerated() {
                let producer = nodes[stream.producer.node]
                let target = EdgeTarget(inbox: node.inbox, ring: ring, bit: stream.bit)
                let producing = producer.state == .connected || producer.state == .ready
                if !producing, case .node = stream.producer {
                    // Nobody produces into the old ring now (the producer ended, or its next
                    // incarnation will be set up with the new inbox): what it queued moves here.
                    moveSuspended(ring, of: node, stream: stream)
                }
                if producer.state == .finished {
                    Reclamation.closeEdge(node.inbox, ring: ring)
                    node.closedRings.insert(ring)
                } else if case .stdout = stream.producer {
                    do {
                        try producer.stdoutPublisher?.replaceEdge(bit: stream.bit, with: target)
                    } catch {
                        // The edge stays with the old inbox: the restarted node gets no more lines on it.
                        console.note(
                            "node '\(node.id)': input '\(node.plan.descriptor.inputs[stream.input].id)' cannot be "
                                + "wired to the restarted node (\(error)); it is closed")
                        Reclamation.closeEdge(node.inbox, ring: ring)
                        node.closedRings.insert(ring)
                    }
                } else {
                    post(
                        to: producer, .replaceEdge(output: stream.output, bit: stream.bit, ring: ring, layout: node.inbox.layout),
                        fds: [node.inbox.segment.fd])
                }
            }
        }
        spawn(node)
    }
}
