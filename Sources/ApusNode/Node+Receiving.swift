// Receiving: events from the inbox, timers, input timeouts, and the async sequence of events.
import ApusTransport
import CApusSys
import Dispatch
import Glibc

extension Node {
    /// The next event, waiting up to `timeout` (nil: until one comes). Returns nil when the wait
    /// timed out, and for good once the event stream has ended (after `stop`).
    public func next(timeout: Duration? = nil) throws(NodeError) -> Event? {
        try receiveLock.locked { () throws(NodeError) -> Event? in try nextLocked(timeout: timeout) }
    }

    /// True once `stop` was delivered: `next` returns nil from then on.
    public var isFinished: Bool { receiveLock.locked { finished } }

    func nextLocked(timeout: Duration?) throws(NodeError) -> Event? {
        if finished { return nil }
        let userDeadline = timeout.map { monotonicNanoseconds() &+ nanoseconds($0) }
        while true {
            beatIfDue()
            if let event = controlLock.locked({ pending.isEmpty ? nil : pending.removeFirst() }) {
                // What was sent before STOP comes first: queued samples and closed inputs; so does
                // what a node sent before it failed (the rest of the inbox, oldest first, until its
                // inputs are drained).
                let isStop = if case .stop = event { true } else { false }
                if isStop || waitsBehindQueued(event), let earlier = receiveNow() {
                    controlLock.locked { pending.insert(event, at: 0) }
                    return earlier
                }
                if isStop { finished = true }
                return event
            }
            // The clock is read only when a timer or a timeout needs it: a hand-off is a few hundred ns.
            let now = timers.isEmpty && inputTimeouts.isEmpty && userDeadline == nil && heartbeat == nil ? 0 : monotonicNanoseconds()
            if let due = timers.indices.min(by: { timers[$0].deadline < timers[$1].deadline }), timers[due].deadline <= now {
                // A timer always due (work slower than its period) must not starve the inbox: after
                // a tick, what waits there (samples, closed inputs, control and so STOP) comes first.
                if tickServedLast {
                    switch receiveInbox(timeoutNanoseconds: 0) {
                    case .event(let event): return event
                    case .control: continue
                    case .nothing: break
                    }
                }
                tickServedLast = true
                // Missed ticks are coalesced: the next one is due a period after this one.
                timers[due].deadline &+= timers[due].period
                if timers[due].deadline <= now { timers[due].deadline = now &+ timers[due].period }
                return .input(
                    Input(
                        id: inputIDs[timers[due].input], index: timers[due].input, metadata: Metadata(timestamp: now), sample: nil,
                        subscriber: nil))
            }
            if let closed = closeTimedOutInput(now: now) { return closed }
            var deadline = userDeadline
            if let timer = timers.map(\.deadline).min() { deadline = min(deadline ?? .max, timer) }
            if let timeout = inputTimeouts.map(\.deadline).min() { deadline = min(deadline ?? .max, timeout) }
            if let heartbeat { deadline = min(deadline ?? .max, heartbeat.due) }
            // Always look at the inbox once, so a timeout of zero polls.
            switch receiveInbox(timeoutNanoseconds: deadline.map { $0 > now ? $0 - now : 0 }) {
            case .event(let event):
                return event
            case .control:
                continue
            case .nothing:
                if let userDeadline, monotonicNanoseconds() >= userDeadline { return nil }
            }
        }
    }

    /// INPUT_CLOSED for an input whose `input_timeout` ran out with nothing queued; the daemon is
    /// told, as it is of a closed output, so a node whose inputs have all closed gets STOP.
    func closeTimedOutInput(now: UInt64) -> Event? {
        guard let due = inputTimeouts.firstIndex(where: { $0.deadline <= now }) else { return nil }
        let ring = inputTimeouts[due].ring
        if subscriber.hasQueued(input: ring) {
            inputTimeouts[due].deadline = now &+ inputTimeouts[due].length
            return nil
        }
        inputTimeouts.remove(at: due)
        do {
            try subscriber.closeInput(ring)
            try controlLock.locked { () throws(TransportError) in try channel.send(.closeInput(ring: ring)) }
        } catch .disconnected {
            controlLock.locked { daemonGone() }
        } catch {
            return .error("closing input '\(inputIDs[ringInputs[ring]])' after its input_timeout: \(error)")
        }
        return .inputClosed(id: inputIDs[ringInputs[ring]])
    }

    /// A sample arrived on this inbox ring: its input's timeout starts again.
    func inputArrived(ring: Int) {
        guard !inputTimeouts.isEmpty, let index = inputTimeouts.firstIndex(where: { $0.ring == ring }) else { return }
        inputTimeouts[index].deadline = monotonicNanoseconds() &+ inputTimeouts[index].length
    }

    enum Received {
        case event(Event)
        /// Control messages were applied: `pending` may have grown.
        case control
        /// Nothing came within the timeout.
        case nothing
    }

    /// Waits on the inbox: samples and closed inputs become events, control messages are applied.
    func receiveInbox(timeoutNanoseconds: UInt64?) -> Received {
        tickServedLast = false
        let received: InboxEvent?
        do {
            received = try subscriber.receive(timeoutNanoseconds: timeoutNanoseconds)
        } catch .disconnected {
            controlLock.locked { daemonGone() }
            return .control
        } catch {
            return .event(.error(error.description))
        }
        switch received {
        case nil:
            return .nothing
        case .control:
            controlLock.locked { drainControl() }
            applyEdgeChanges()
            return .control
        case .sample(let sample):
            let metadata: SampleMetadata
            do {
                metadata = try sample.metadata()
            } catch {
                subscriber.release(sample)
                return .event(.error(error.description))
            }
            inputArrived(ring: sample.input)
            return .event(
                .input(
                    Input(
                        id: inputIDs[ringInputs[sample.input]], index: ringInputs[sample.input], metadata: metadata, sample: sample,
                        subscriber: subscriber)))
        case .inputClosed(let ring):
            inputTimeouts.removeAll { $0.ring == ring }
            return .event(.inputClosed(id: inputIDs[ringInputs[ring]]))
        }
    }

    /// Whether `event` is NODE_FAILED and samples of the failed node wait in the inbox.
    func waitsBehindQueued(_ event: Event) -> Bool {
        guard case .nodeFailed(let failure) = event else { return false }
        return ringInputs.indices.contains { ring in
            failure.inputs.contains(inputIDs[ringInputs[ring]]) && subscriber.hasQueued(input: ring)
        }
    }

    /// A sample or closed input that is already there, without waiting.
    func receiveNow() -> Event? {
        while true {
            switch receiveInbox(timeoutNanoseconds: 0) {
            case .event(let event): return event
            case .control: continue
            case .nothing: return nil
            }
        }
    }

    /// Events as an asynchronous sequence; it ends after `stop`. Waiting happens on a dedicated
    /// queue, so no task of the cooperative pool is blocked.
    public var events: Events { Events(node: self) }

    public struct Events: AsyncSequence, Sendable {
        let node: Node

        public func makeAsyncIterator() -> Iterator { Iterator(node: node) }

        public struct Iterator: AsyncIteratorProtocol {
            let node: Node

            public mutating func next() async throws(NodeError) -> Event? {
                let node = self.node
                let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Event?, NodeError>, Never>) in
                    node.waitQueue.async {
                        continuation.resume(returning: Result { () throws(NodeError) in try node.next() })
                    }
                }
                return try result.get()
            }
        }
    }

    /// Where `events` waits, so no task of the cooperative pool blocks.
}

func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
}
