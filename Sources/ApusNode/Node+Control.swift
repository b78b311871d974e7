// The control socket: what the daemon sends a node, read by whichever thread gets there first.
import ApusTransport
import CApusSys
import Dispatch
import Glibc

extension Node {
    /// Reads the control socket from a sending thread. Events it puts aside (STOP, a failed
    /// producer) are the receiver's: wake it, or a receiver waiting with no timeout never sees them.
    func drainControlForReceiver() {
        let woke = controlLock.locked { () -> Bool in
            let before = pending.count
            drainControl()
            return pending.count > before
        }
        if woke { subscriber.wakeReceiver() }
        applyEdgeChanges()
    }

    /// Points the publisher at the new inboxes of restarted consumers (what the old ones still
    /// had queued moves along), and adds and removes the edges of consumers that joined or left
    /// the running dataflow, in the order the daemon sent them. Takes `sendLock`: call it
    /// holding no other lock.
    func applyEdgeChanges() {
        guard edgeLock.locked({ !replacedEdges.isEmpty || !edgeChanges.isEmpty }) else { return }
        sendLock.locked {
            let (targets, changes) = edgeLock.locked { () -> ([Int: EdgeTarget], [EdgeChange]) in
                defer { (replacedEdges, edgeChanges) = ([:], []) }
                return (replacedEdges, edgeChanges)
            }
            for (bit, target) in targets {
                do {
                    try publisher.replaceEdge(bit: bit, with: target)
                } catch {
                    controlLock.locked { pending.append(.error("control message: \(error)")) }
                }
            }
            for change in changes {
                do {
                    switch change {
                    case .add(let output, let target): try publisher.addEdge(output: output, target: target)
                    case .remove(let bit): publisher.removeEdge(bit: bit)
                    }
                } catch {
                    controlLock.locked { pending.append(.error("control message: \(error)")) }
                }
            }
        }
    }

    /// A publish found the full ring of a consumer being restarted (the caller holds `sendLock`):
    /// reads the control socket for up to 20 ms, unless another thread is reading it, and returns
    /// the consumer's new inbox ring if it came.
    func awaitReplacedEdge(bit: Int, deadline: UInt64) -> EdgeTarget? {
        sendLock.assertHeld()
        if let target = edgeLock.locked({ replacedEdges.removeValue(forKey: bit) }) { return target }
        let now = monotonicNanoseconds()
        let milliseconds = Int32(min(deadline > now ? (deadline - now) / 1_000_000 : 0, 20))
        let woke = controlLock.lockedIfFree { () -> Bool in
            var entry = pollfd(fd: channel.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, max(milliseconds, 1))
            let before = pending.count
            drainControl()
            return pending.count > before
        }
        switch woke {
        case true?: subscriber.wakeReceiver()
        case false?: break
        case nil: usleep(1_000)  // the receiving thread reads it, and hands the inbox over
        }
        return edgeLock.locked { replacedEdges.removeValue(forKey: bit) }
    }

    /// Reads every control message waiting on the socket (caller holds `controlLock`).
    func drainControl() {
        controlLock.assertHeld()
        subscriber.acknowledgeControl()
        while channel.hasPendingInput() {
            do {
                try handleNextMessage()
            } catch .disconnected {
                daemonGone()
                return
            } catch {
                pending.append(.error("control message: \(error)"))
            }
        }
    }

    func daemonGone() {
        controlLock.assertHeld()
        guard !pending.contains(where: \.isStop) else { return }
        pending.append(.error(NodeError.daemonGone.description))
        pending.append(.stop)
    }

    /// Receives and applies one control message (caller holds `controlLock`).
    func handleNextMessage() throws(TransportError) {
        controlLock.assertHeld()
        let (message, fds) = try channel.receiveMessage()
        switch message {
        case .pool(let producer, let index, let layout):
            guard fds.count == 2 else { throw .malformedMessage("pool without its two descriptors") }
            knownPools[producer, default: [:]][index] = try MappedPool(index: index, layout: layout, dataFD: fds[0], controlFD: fds[1])
        case .start:
            started = true
        case .stop:
            pending.append(.stop)
        case .producerFailed(let producer, let text):
            var node = "?"
            var inputs: [String] = []
            for input in setup.inputs {
                if case .stream(producer, let producerNode, _, _) = input.kind {
                    node = producerNode
                    inputs.append(input.id)
                }
            }
            pending.append(.nodeFailed(NodeFailure(node: node, inputs: inputs, message: text)))
        case .replaceEdge(_, let bit, let ring, let layout):
            guard fds.count == 1 else { throw .malformedMessage("edge without its inbox descriptor") }
            let inbox = try Inbox(adopting: fds[0], layout: layout)
            edgeLock.locked { replacedEdges[bit] = EdgeTarget(inbox: inbox, ring: ring, bit: bit) }
        case .addEdge(let output, let bit, let ring, let layout):
            guard fds.count == 1 else { throw .malformedMessage("edge without its inbox descriptor") }
            let inbox = try Inbox(adopting: fds[0], layout: layout)
            guard ring < layout.rings.count else { throw .malformedMessage("edge to ring \(ring) of an inbox of \(layout.rings.count)") }
            edgeLock.locked { edgeChanges.append(.add(output: output, EdgeTarget(inbox: inbox, ring: ring, bit: bit))) }
        case .removeEdge(let bit):
            for fd in fds { close(fd) }
            edgeLock.locked { edgeChanges.append(.remove(bit: bit)) }
        case .hello, .ready, .closeOutput, .setup, .closeInput, .stopDataflow, .alive:
            for fd in fds { close(fd) }
            throw .malformedMessage("a node does not expect message kind \(message.kind)")
        }
    }

    /// A pool the subscriber met in a descriptor: known already, or announced shortly (the daemon
    /// relays a producer's pools before the producer can use them).
    func resolvePool(producer: Int, index: Int) throws(TransportError) -> MappedPool {
        defer { applyEdgeChanges() }  // read on the way, perhaps
        return try controlLock.locked { () throws(TransportError) -> MappedPool in
            while true {
                if let pool = knownPools[producer]?[index] { return pool }
                try handleNextMessage()
            }
        }
    }
}
