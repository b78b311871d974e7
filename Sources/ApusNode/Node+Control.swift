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
            try sendLock.locked { () throws(TransportError) in
                try publisher.replaceEdge(bit: bit, with: EdgeTarget(inbox: inbox, ring: ring, bit: bit))
            }
        case .hello, .ready, .closeOutput, .setup, .closeInput:
            for fd in fds { close(fd) }
            throw .malformedMessage("a node does not expect message kind \(message.kind)")
        }
    }

    /// A pool the subscriber met in a descriptor: known already, or announced shortly (the daemon
    /// relays a producer's pools before the producer can use them).
    func resolvePool(producer: Int, index: Int) throws(TransportError) -> MappedPool {
        try controlLock.locked { () throws(TransportError) -> MappedPool in
            while true {
                if let pool = knownPools[producer]?[index] { return pool }
                try handleNextMessage()
            }
        }
    }
}
