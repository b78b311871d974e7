import ApusTransport
import CApusSys
import Dispatch
import Glibc

/// A node of a running dataflow: receives events on its inputs and sends on its outputs.
///
/// `next` is for one thread at a time; `send`, `allocate` and `closeOutput` may be called from
/// any thread, also while another thread waits in `next`.
public final class Node: @unchecked Sendable {
    /// The node's id in the dataflow.
    public let id: String
    /// Declared inputs, in dataflow order.
    public let inputIDs: [String]
    /// Where each input comes from, as in the dataflow file (`camera/frame`, `apus/timer/millis/100`).
    public let inputSources: [String]
    /// Declared outputs, in dataflow order.
    public let outputIDs: [String]

    private let channel: ControlChannel
    private let setup: NodeSetup
    private let inbox: Inbox
    private let subscriber: Subscriber
    private var publisher: Publisher!
    /// Inbox ring → index into `inputIDs`.
    private let ringInputs: [Int]
    // State below is only touched under the node's locks (receive, send, control), never through overlapping
    // accesses, so it skips the runtime exclusivity checks (a measurable share of a hand-off).
    @exclusivity(unchecked) private var timers: [Timer] = []
    /// Per output, whether `closeOutput` closed it (checked on every send: an array, not a set).
    @exclusivity(unchecked) private var closedOutputs: [Bool] = []
    @exclusivity(unchecked) private var finished = false

    private let receiveLock = Lock()
    private let sendLock = Lock()
    /// Guards the control socket and what arrives on it: `pending`, `knownPools`.
    private let controlLock = Lock()
    @exclusivity(unchecked) private var pending: [Event] = []
    @exclusivity(unchecked) private var knownPools: [Int: [Int: MappedPool]] = [:]
    @exclusivity(unchecked) private var started = false

    private struct Timer {
        var input: Int
        var period: UInt64
        var deadline: UInt64
    }

    /// A stream input with an `input_timeout`: closed when nothing arrives before `deadline`.
    private struct InputTimeout {
        var ring: Int
        var length: UInt64
        var deadline: UInt64
    }
    @exclusivity(unchecked) private var inputTimeouts: [InputTimeout] = []

    /// Joins the dataflow this process was started in, as `apus run` set up its environment.
    /// Returns once every node of the dataflow is connected (timers start then).
    public convenience init() throws(NodeError) {
        guard let id = getenv("APUS_NODE_ID").map({ String(cString: $0) }),
              let fdText = getenv("APUS_CONTROL_FD").map({ String(cString: $0) }), let fd = Int32(fdText), fd >= 0,
              fcntl(fd, F_GETFD) >= 0
        else {
            let program = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "this program"
            throw .notInDataflow(program: program)
        }
        unsetenv("APUS_CONTROL_FD")
        apussys_line_buffer_stdout()
        try self.init(id: id, channel: ControlChannel(adopting: fd))
    }

    init(id: String, channel: ControlChannel) throws(NodeError) {
        self.channel = channel
        do {
            try channel.send(.hello(node: id, pid: Int(getpid())))
            let (message, fds) = try channel.receiveMessage()
            guard case .setup(let setup) = message, fds.count == 1 + setup.peerInboxes.count else {
                for fd in fds { close(fd) }
                throw NodeError.protocolViolation("expected the node's setup, got \(message.kind) with \(fds.count) descriptors")
            }
            self.setup = setup
            self.id = setup.node
            inputIDs = setup.inputs.map(\.id)
            inputSources = setup.inputs.map(\.source)
            outputIDs = setup.outputs.map(\.id)
            closedOutputs = Array(repeating: false, count: outputIDs.count)
            inbox = try Inbox(adopting: fds[0], layout: setup.inbox)
            var peers: [Inbox] = []
            for (index, layout) in setup.peerInboxes.enumerated() {
                peers.append(try Inbox(adopting: fds[1 + index], layout: layout))
            }
            var bindings: [InputBinding] = []
            var ringInputs: [Int] = []
            for (index, input) in setup.inputs.enumerated() {
                if case .stream(let producer, _, _, let bit) = input.kind {
                    bindings.append(InputBinding(producer: producer, bit: bit))
                    ringInputs.append(index)
                }
            }
            self.ringInputs = ringInputs
            let box = NodeReference()
            subscriber = try Subscriber(inbox: inbox, inputs: bindings) { (producer, index) throws(TransportError) in
                guard let node = box.node else { throw .disconnected }
                return try node.resolvePool(producer: producer, index: index)
            }
            box.node = self
            let configuration = Publisher.Configuration(
                name: setup.node, pool: setup.pool, largeSlotCount: setup.largeSlotCount, maxSampleSize: setup.maxSampleSize,
                backpressureTimeoutNanoseconds: setup.backpressureTimeoutNanoseconds, firstPoolIndex: setup.firstPoolIndex)
            let outputs = setup.outputs.map { $0.edges.map { EdgeTarget(inbox: peers[$0.peer], ring: $0.ring, bit: $0.bit) } }
            let producer = setup.producer
            publisher = try Publisher(configuration: configuration, outputs: outputs) { (pool: SamplePool) throws(TransportError) in
                try channel.send(.pool(producer: producer, index: pool.index, layout: pool.layout), fds: [pool.data.fd, pool.control.fd])
            }
            try channel.send(.ready)
            // Wait for the start barrier; a STOP before it (the run is stopping) ends the wait too.
            while !started, !pending.contains(where: \.isStop) {
                try controlLock.locked { () throws(TransportError) in try handleNextMessage() }
            }
        } catch let error as NodeError {
            throw error
        } catch let error as TransportError {
            throw error == .disconnected ? .daemonGone : .transport(error)
        } catch {
            throw .protocolViolation("\(error)")
        }
        let now = monotonicNanoseconds()
        for (index, input) in setup.inputs.enumerated() {
            if case .timer(let period) = input.kind {
                timers.append(Timer(input: index, period: period, deadline: now &+ period))
            }
        }
        for (ring, input) in ringInputs.enumerated() where setup.inputs[input].timeoutNanoseconds > 0 {
            let length = setup.inputs[input].timeoutNanoseconds
            inputTimeouts.append(InputTimeout(ring: ring, length: length, deadline: now &+ length))
        }
    }

    // MARK: Receiving

    /// The next event, waiting up to `timeout` (nil: until one comes). Returns nil when the wait
    /// timed out, and for good once the event stream has ended (after `stop`).
    public func next(timeout: Duration? = nil) throws(NodeError) -> Event? {
        try receiveLock.locked { () throws(NodeError) -> Event? in try nextLocked(timeout: timeout) }
    }

    /// True once `stop` was delivered: `next` returns nil from then on.
    public var isFinished: Bool { receiveLock.locked { finished } }

    private func nextLocked(timeout: Duration?) throws(NodeError) -> Event? {
        if finished { return nil }
        let userDeadline = timeout.map { monotonicNanoseconds() &+ nanoseconds($0) }
        while true {
            if let event = controlLock.locked({ pending.isEmpty ? nil : pending.removeFirst() }) {
                guard case .stop = event else { return event }
                // What was sent before STOP comes first: queued samples and closed inputs.
                if let earlier = receiveNow() {
                    controlLock.locked { pending.insert(event, at: 0) }
                    return earlier
                }
                finished = true
                return event
            }
            // The clock is read only when a timer or a timeout needs it: a hand-off is a few hundred ns.
            let now = timers.isEmpty && inputTimeouts.isEmpty && userDeadline == nil ? 0 : monotonicNanoseconds()
            if let due = timers.indices.min(by: { timers[$0].deadline < timers[$1].deadline }), timers[due].deadline <= now {
                timers[due].deadline &+= timers[due].period
                if timers[due].deadline <= now { timers[due].deadline = now &+ timers[due].period }
                return .input(Input(id: inputIDs[timers[due].input], index: timers[due].input, metadata: Metadata(timestamp: now), sample: nil, subscriber: nil))
            }
            if let closed = closeTimedOutInput(now: now) { return closed }
            var deadline = userDeadline
            if let timer = timers.map(\.deadline).min() { deadline = min(deadline ?? .max, timer) }
            if let timeout = inputTimeouts.map(\.deadline).min() { deadline = min(deadline ?? .max, timeout) }
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
    private func closeTimedOutInput(now: UInt64) -> Event? {
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
    private func inputArrived(ring: Int) {
        guard !inputTimeouts.isEmpty, let index = inputTimeouts.firstIndex(where: { $0.ring == ring }) else { return }
        inputTimeouts[index].deadline = monotonicNanoseconds() &+ inputTimeouts[index].length
    }

    private enum Received {
        case event(Event)
        /// Control messages were applied: `pending` may have grown.
        case control
        /// Nothing came within the timeout.
        case nothing
    }

    /// Waits on the inbox: samples and closed inputs become events, control messages are applied.
    private func receiveInbox(timeoutNanoseconds: UInt64?) -> Received {
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
            return .event(.input(Input(
                id: inputIDs[ringInputs[sample.input]], index: ringInputs[sample.input], metadata: metadata, sample: sample, subscriber: subscriber)))
        case .inputClosed(let ring):
            inputTimeouts.removeAll { $0.ring == ring }
            return .event(.inputClosed(id: inputIDs[ringInputs[ring]]))
        }
    }

    /// A sample or closed input that is already there, without waiting.
    private func receiveNow() -> Event? {
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
    private let waitQueue = DispatchQueue(label: "apus.node.events")

    // MARK: Sending

    /// Sends a copy of `bytes` on `output` (one copy, into shared memory). The length must be a
    /// whole number of `metadata.elementType` elements, and match `metadata.shape` if one is set.
    public func send(_ output: String, _ bytes: UnsafeRawBufferPointer, metadata: Metadata = Metadata()) throws(NodeError) {
        try send(output: try outputIndex(output), bytes, metadata: metadata)
    }

    /// Sends `values` as a typed array: the receiver sees their element type (and `metadata.shape`).
    public func send<T: Element>(_ output: String, _ values: [T], metadata: Metadata = Metadata()) throws(NodeError) {
        var metadata = metadata
        metadata.elementType = T.elementType
        let index = try outputIndex(output)
        try values.withUnsafeBytes { bytes in
            Result { () throws(NodeError) in try send(output: index, bytes, metadata: metadata) }
        }.get()
    }

    /// Sends `text` as `utf8`.
    public func send(_ output: String, _ text: String, metadata: Metadata = Metadata()) throws(NodeError) {
        var metadata = metadata
        metadata.elementType = .utf8
        var text = text
        let index = try outputIndex(output)
        try text.withUTF8 { utf8 in
            Result { () throws(NodeError) in try send(output: index, UnsafeRawBufferPointer(utf8), metadata: metadata) }
        }.get()
    }

    /// Sends a copy of `bytes` on the output at `index` in `outputIDs`, with `metadata` as given.
    @_spi(CAPI) public func send(output index: Int, _ bytes: UnsafeRawBufferPointer, metadata: Metadata) throws(NodeError) {
        try validate(length: bytes.count, metadata)
        try sendLocked(output: index) { () throws(TransportError) in _ = try publisher.send(bytes, output: index, metadata: metadata) }
    }

    /// Reserves a sample of `count` elements of `type` in shared memory, to fill in place and `send`
    /// without a copy. A sample that is never sent returns to the pool when it is dropped.
    public func allocate<T: Element>(output: String, count: Int, of type: T.Type = UInt8.self) throws(NodeError) -> OutputSample<T> {
        let index = try outputIndex(output)
        let (length, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow else { throw .transport(.sampleTooLarge(length: Int.max, maximum: setup.maxSampleSize)) }
        return try allocate(output: index, byteCount: length)
    }

    /// Reserves `byteCount` bytes for a sample on the output at `index` in `outputIDs`.
    @_spi(CAPI) public func allocate<T: Element>(output index: Int, byteCount: Int) throws(NodeError) -> OutputSample<T> {
        let (reserved, buffer) = try sendLocked(output: index) { () throws(TransportError) in
            let reserved = try publisher.allocate(byteCount)
            return (reserved, publisher.payload(reserved))
        }
        return OutputSample(node: self, output: index, reserved: reserved, buffer: buffer)
    }

    /// Sends a sample made by `allocate`. `metadata.elementType` is set from the sample's type.
    public func send<T: Element>(_ sample: consuming OutputSample<T>, metadata: Metadata = Metadata()) throws(NodeError) {
        var metadata = metadata
        metadata.elementType = T.elementType
        try send(sample, as: metadata)
    }

    /// Sends a sample made by `allocate` with `metadata` as given, its element type included.
    @_spi(CAPI) public func send<T: Element>(_ sample: consuming OutputSample<T>, as metadata: Metadata) throws(NodeError) {
        let output = sample.output
        let length = sample.byteCount
        guard let reserved = sample.take() else { return }
        do {
            try validate(length: length, metadata)
        } catch {
            discard(reserved)
            throw error
        }
        do throws(NodeError) {
            // publish gives the sample back on its own errors; only a closed output leaves it reserved.
            try sendLocked(output: output) { () throws(TransportError) in _ = try publisher.publish(reserved, output: output, metadata: metadata) }
        } catch .outputClosed(let name) {
            discard(reserved)
            throw .outputClosed(name)
        }
    }

    func discard(_ reserved: ReservedSample) {
        sendLock.locked { publisher.discard(reserved) }
    }

    /// Tells this output's consumers that nothing more will come (they get INPUT_CLOSED).
    public func closeOutput(_ output: String) throws(NodeError) {
        let index = try outputIndex(output)
        let first = sendLock.locked {
            defer { closedOutputs[index] = true }
            return !closedOutputs[index]
        }
        guard first else { return }
        do {
            try controlLock.locked { () throws(TransportError) in try channel.send(.closeOutput(index)) }
        } catch {
            throw error == .disconnected ? .daemonGone : .transport(error)
        }
    }

    private func outputIndex(_ output: String) throws(NodeError) -> Int {
        guard let index = outputIDs.firstIndex(of: output) else { throw .unknownOutput(output, declared: outputIDs) }
        return index
    }

    /// The index in `outputIDs` of the output named by a NUL-terminated UTF-8 string, without
    /// making a String of it.
    @_spi(CAPI) public func outputIndex(cString name: UnsafePointer<CChar>) throws(NodeError) -> Int {
        try outputIndex(utf8: UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }

    /// The index in `outputIDs` of the output named by these UTF-8 bytes.
    @_spi(CAPI) public func outputIndex(utf8 name: UnsafeRawBufferPointer) throws(NodeError) -> Int {
        for (index, id) in outputIDs.enumerated() {
            var id = id
            let equal = id.withUTF8 { utf8 in utf8.count == name.count && (name.isEmpty || memcmp(utf8.baseAddress!, name.baseAddress!, name.count) == 0) }
            if equal { return index }
        }
        throw .unknownOutput(String(decoding: name, as: UTF8.self), declared: outputIDs)
    }

    /// The payload must be whole elements of the metadata's type, and as many as its shape says.
    private func validate(length: Int, _ metadata: Metadata) throws(NodeError) {
        let width = metadata.elementType.byteWidth
        guard length % width == 0 else { throw .lengthMismatch(length: length, elementType: metadata.elementType) }
        guard !metadata.shape.isEmpty else { return }
        var elements: UInt64 = 1
        for dimension in metadata.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .shapeMismatch(shape: metadata.shape, length: length, elementType: metadata.elementType) }
            elements = product
        }
        guard elements == UInt64(length / width) else {
            throw .shapeMismatch(shape: metadata.shape, length: length, elementType: metadata.elementType)
        }
    }

    private func sendLocked<Result>(output: Int, _ body: () throws(TransportError) -> Result) throws(NodeError) -> Result {
        // Control first, outside the send lock: a restarted consumer may have replaced an edge.
        if subscriber.controlPending { drainControlForReceiver() }
        let outcome = sendLock.locked { () -> Swift.Result<Result, NodeError> in
            guard !closedOutputs[output] else { return .failure(.outputClosed(outputIDs[output])) }
            return Swift.Result { () throws(TransportError) in try body() }.mapError { .transport($0) }
        }
        return try outcome.get()
    }

    // MARK: Control

    /// Reads the control socket from a sending thread. Events it puts aside (STOP, a failed
    /// producer) are the receiver's: wake it, or a receiver waiting with no timeout never sees them.
    private func drainControlForReceiver() {
        let woke = controlLock.locked { () -> Bool in
            let before = pending.count
            drainControl()
            return pending.count > before
        }
        if woke { subscriber.wakeReceiver() }
    }

    /// Reads every control message waiting on the socket (caller holds `controlLock`).
    private func drainControl() {
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

    private func daemonGone() {
        guard !pending.contains(where: \.isStop) else { return }
        pending.append(.error(NodeError.daemonGone.description))
        pending.append(.stop)
    }

    /// Receives and applies one control message (caller holds `controlLock`).
    private func handleNextMessage() throws(TransportError) {
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
    private func resolvePool(producer: Int, index: Int) throws(TransportError) -> MappedPool {
        try controlLock.locked { () throws(TransportError) -> MappedPool in
            while true {
                if let pool = knownPools[producer]?[index] { return pool }
                try handleNextMessage()
            }
        }
    }
}

/// A sample reserved in shared memory by `Node.allocate`: fill `buffer`, then `Node.send` it.
public struct OutputSample<T: Element>: ~Copyable {
    let node: Node
    let output: Int
    private var reserved: ReservedSample?
    /// The payload, writable until the sample is sent.
    public let buffer: UnsafeMutableBufferPointer<T>
    /// The payload's length in bytes, as reserved.
    public let byteCount: Int

    init(node: Node, output: Int, reserved: ReservedSample, buffer: UnsafeMutableRawBufferPointer) {
        self.node = node
        self.output = output
        self.reserved = reserved
        self.byteCount = buffer.count
        self.buffer = UnsafeMutableBufferPointer(
            start: buffer.baseAddress?.assumingMemoryBound(to: T.self), count: buffer.count / MemoryLayout<T>.stride)
    }

    mutating func take() -> ReservedSample? {
        defer { reserved = nil }
        return reserved
    }

    deinit {
        if let reserved { node.discard(reserved) }
    }
}

/// Breaks the cycle between a node and the subscriber's pool resolver, which only the node calls.
/// `unowned`, not `weak`: a weak reference gives the node a side table, and every retain and
/// release of the node would then take the slow path.
private final class NodeReference: @unchecked Sendable {
    unowned var node: Node?
}

/// A mutex for the node's few short critical sections.
final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
    }

    func locked<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
}

private func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
}
