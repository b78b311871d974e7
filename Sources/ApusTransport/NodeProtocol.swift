import Glibc

/// The control protocol between the daemon and a node, over the node's `ControlChannel`.
///
/// Start-up: the node sends `hello`; the daemon answers `setup` (the node's inbox and the inboxes
/// its outputs feed, as descriptors) and a `pool` for every pool its producers already have; the
/// node creates its first pool and announces it with `pool`, then sends `ready`; once every node is
/// ready the daemon sends `start`. Afterwards the daemon relays new pools, and sends `stop`,
/// `producerFailed`, `replaceEdge`, `addEdge` and `removeEdge`, each followed by `Inbox.postControl` so they arrive through
/// the node's doorbell. Data never passes here.
public enum NodeMessage: Equatable, Sendable {
    /// Node → daemon: the node's id as it read it from its environment.
    case hello(node: String, pid: Int)
    /// A pool (data and control descriptors attached): node → daemon when it creates one, daemon →
    /// each consumer of that producer.
    case pool(producer: Int, index: Int, layout: PoolLayout)
    /// Node → daemon: its first pool is announced; it waits for `start`.
    case ready
    /// Node → daemon: it will send nothing more on this output.
    case closeOutput(Int)
    /// Daemon → node: its wiring. Descriptors: the node's inbox, then one per `peerInboxes` entry.
    case setup(NodeSetup)
    /// Daemon → node: every node is ready; timers start now.
    case start
    /// Daemon → node: finish up and exit.
    case stop
    /// Daemon → node: a producer feeding some of this node's inputs failed.
    case producerFailed(producer: Int, message: String)
    /// Daemon → producer: the consumer on edge `bit` was restarted with a new inbox (attached).
    case replaceEdge(output: Int, bit: Int, ring: Int, layout: InboxLayout)
    /// Node → daemon: the input on this inbox ring timed out (`input_timeout`) and is closed.
    case closeInput(ring: Int)
    /// Node → daemon: stop the whole dataflow (an operator asked for it), saying why.
    case stopDataflow(reason: String)
    /// node → daemon: it is alive (sent every quarter of its `health_check_timeout`).
    case alive
    /// Daemon → producer: a consumer joined the running dataflow; feed ring `ring` of its inbox
    /// (attached) from `output`, with holder bit `bit`.
    case addEdge(output: Int, bit: Int, ring: Int, layout: InboxLayout)
    /// Daemon → producer: the consumer on edge `bit` left; stop feeding it.
    case removeEdge(bit: Int)

    /// The first byte of an encoded message: one tag per case, for encoding and decoding alike.
    public enum Kind: UInt8, Sendable {
        case hello = 1
        case pool
        case ready
        case closeOutput
        case setup
        case start
        case stop
        case producerFailed
        case replaceEdge
        case closeInput
        case stopDataflow
        case alive
        case addEdge
        case removeEdge
    }

    public var kind: Kind {
        switch self {
        case .hello: .hello
        case .pool: .pool
        case .ready: .ready
        case .closeOutput: .closeOutput
        case .setup: .setup
        case .start: .start
        case .stop: .stop
        case .producerFailed: .producerFailed
        case .replaceEdge: .replaceEdge
        case .closeInput: .closeInput
        case .stopDataflow: .stopDataflow
        case .alive: .alive
        case .addEdge: .addEdge
        case .removeEdge: .removeEdge
        }
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.u8(kind.rawValue)
        switch self {
        case .hello(let node, let pid):
            writer.string(node)
            writer.int(pid)
        case .pool(let producer, let index, let layout):
            writer.int(producer)
            writer.int(index)
            writer.list(layout.encoded) { $0.u64($1) }
        case .ready, .start, .stop:
            break
        case .closeOutput(let output):
            writer.int(output)
        case .setup(let setup):
            setup.encode(into: &writer)
        case .producerFailed(let producer, let message):
            writer.int(producer)
            writer.string(message)
        case .replaceEdge(let output, let bit, let ring, let layout), .addEdge(let output, let bit, let ring, let layout):
            writer.int(output)
            writer.int(bit)
            writer.int(ring)
            writer.list(layout.encoded) { $0.u64($1) }
        case .closeInput(let ring):
            writer.int(ring)
        case .stopDataflow(let reason):
            writer.string(reason)
        case .alive:
            break
        case .removeEdge(let bit):
            writer.int(bit)
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(TransportError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(TransportError) -> NodeMessage? in
                var reader = ByteReader(buffer, corrupt: false)
                let tag = try reader.u8()
                guard let kind = Kind(rawValue: tag) else { return nil }
                let decoded: NodeMessage
                switch kind {
                case .hello: decoded = .hello(node: try reader.string(), pid: try reader.int())
                case .pool:
                    decoded = .pool(
                        producer: try reader.int(), index: try reader.int(),
                        layout: try PoolLayout(encoded: try reader.list { (r: inout ByteReader) throws(TransportError) in try r.u64() }))
                case .ready: decoded = .ready
                case .closeOutput: decoded = .closeOutput(try reader.int())
                case .setup: decoded = .setup(try NodeSetup(from: &reader))
                case .start: decoded = .start
                case .stop: decoded = .stop
                case .producerFailed: decoded = .producerFailed(producer: try reader.int(), message: try reader.string())
                case .replaceEdge, .addEdge:
                    let (output, bit, ring) = (try reader.int(), try reader.int(), try reader.int())
                    let layout = try InboxLayout(encoded: try reader.list { (r: inout ByteReader) throws(TransportError) in try r.u64() })
                    decoded =
                        kind == .addEdge
                        ? .addEdge(output: output, bit: bit, ring: ring, layout: layout)
                        : .replaceEdge(output: output, bit: bit, ring: ring, layout: layout)
                case .closeInput: decoded = .closeInput(ring: try reader.int())
                case .stopDataflow: decoded = .stopDataflow(reason: try reader.string())
                case .alive: decoded = .alive
                case .removeEdge: decoded = .removeEdge(bit: try reader.int())
                }
                guard reader.isAtEnd else { throw reader.failure("\(buffer.count - reader.offset) bytes left after a message") }
                return decoded
            }
        }
        guard let message = try result.get() else { throw .malformedMessage("unknown message kind \(bytes.first ?? 0)") }
        self = message
    }
}

/// Everything a node needs to join its dataflow.
public struct NodeSetup: Equatable, Sendable {
    public enum InputKind: Equatable, Sendable {
        /// Fed by a producer through inbox ring `ring`, holding samples with edge bit `bit`.
        case stream(producer: Int, producerNode: String, ring: Int, bit: Int)
        /// A timer generated inside the node, after `start`.
        case timer(periodNanoseconds: UInt64)
    }

    public struct Input: Equatable, Sendable {
        public var id: String
        /// Where the input comes from, as the dataflow file says: `camera/frame`, `dora/timer/millis/100`.
        public var source: String
        public var kind: InputKind
        /// `input_timeout`: a stream input that gets nothing for this long is closed (0: never).
        public var timeoutNanoseconds: UInt64

        public init(id: String, source: String = "", kind: InputKind, timeoutNanoseconds: UInt64 = 0) {
            self.id = id
            self.source = source
            self.kind = kind
            self.timeoutNanoseconds = timeoutNanoseconds
        }
    }

    public struct Edge: Equatable, Sendable {
        /// Index into `peerInboxes`.
        public var peer: Int
        public var ring: Int
        public var bit: Int
        /// The consuming node's id.
        public var consumer: String

        public init(peer: Int, ring: Int, bit: Int, consumer: String = "") {
            self.peer = peer
            self.ring = ring
            self.bit = bit
            self.consumer = consumer
        }
    }

    public struct Output: Equatable, Sendable {
        public var id: String
        public var edges: [Edge]

        public init(id: String, edges: [Edge]) {
            self.id = id
            self.edges = edges
        }
    }

    public var node: String
    /// This node's producer key: how consumers name it in `pool` messages.
    public var producer: Int
    public var inputs: [Input]
    public var inbox: InboxLayout
    public var outputs: [Output]
    public var peerInboxes: [InboxLayout]
    public var pool: PoolLayout
    public var largeSlotCount: Int
    public var maxSampleSize: Int
    public var firstPoolIndex: Int
    public var backpressureTimeoutNanoseconds: UInt64

    public init(
        node: String, producer: Int, inputs: [Input], inbox: InboxLayout, outputs: [Output], peerInboxes: [InboxLayout],
        pool: PoolLayout, largeSlotCount: Int, maxSampleSize: Int, firstPoolIndex: Int, backpressureTimeoutNanoseconds: UInt64
    ) {
        self.node = node
        self.producer = producer
        self.inputs = inputs
        self.inbox = inbox
        self.outputs = outputs
        self.peerInboxes = peerInboxes
        self.pool = pool
        self.largeSlotCount = largeSlotCount
        self.maxSampleSize = maxSampleSize
        self.firstPoolIndex = firstPoolIndex
        self.backpressureTimeoutNanoseconds = backpressureTimeoutNanoseconds
    }

    func encode(into writer: inout ByteWriter) {
        writer.string(node)
        writer.int(producer)
        writer.list(inputs) { writer, input in
            writer.string(input.id)
            writer.string(input.source)
            switch input.kind {
            case .stream(let producer, let producerNode, let ring, let bit):
                writer.u8(1)
                writer.int(producer)
                writer.string(producerNode)
                writer.int(ring)
                writer.int(bit)
            case .timer(let period):
                writer.u8(2)
                writer.u64(period)
            }
            writer.u64(input.timeoutNanoseconds)
        }
        writer.list(inbox.encoded) { $0.u64($1) }
        writer.list(outputs) { writer, output in
            writer.string(output.id)
            writer.list(output.edges) {
                $0.int($1.peer)
                $0.int($1.ring)
                $0.int($1.bit)
                $0.string($1.consumer)
            }
        }
        writer.list(peerInboxes) { writer, layout in writer.list(layout.encoded) { $0.u64($1) } }
        writer.list(pool.encoded) { $0.u64($1) }
        writer.int(largeSlotCount)
        writer.int(maxSampleSize)
        writer.int(firstPoolIndex)
        writer.u64(backpressureTimeoutNanoseconds)
    }

    init(from reader: inout ByteReader) throws(TransportError) {
        func words(_ r: inout ByteReader) throws(TransportError) -> [UInt64] {
            try r.list { (r: inout ByteReader) throws(TransportError) in try r.u64() }
        }
        node = try reader.string()
        producer = try reader.int()
        inputs = try reader.list { (r: inout ByteReader) throws(TransportError) -> Input in
            let id = try r.string()
            let source = try r.string()
            let kind: InputKind
            switch try r.u8() {
            case 1: kind = .stream(producer: try r.int(), producerNode: try r.string(), ring: try r.int(), bit: try r.int())
            case 2: kind = .timer(periodNanoseconds: try r.u64())
            case let tag: throw r.failure("input '\(id)' has unknown kind \(tag)")
            }
            return Input(id: id, source: source, kind: kind, timeoutNanoseconds: try r.u64())
        }
        inbox = try InboxLayout(encoded: try words(&reader))
        outputs = try reader.list { (r: inout ByteReader) throws(TransportError) -> Output in
            Output(
                id: try r.string(),
                edges: try r.list { (r: inout ByteReader) throws(TransportError) in
                    Edge(peer: try r.int(), ring: try r.int(), bit: try r.int(), consumer: try r.string())
                })
        }
        peerInboxes = try reader.list { (r: inout ByteReader) throws(TransportError) in try InboxLayout(encoded: try words(&r)) }
        pool = try PoolLayout(encoded: try words(&reader))
        largeSlotCount = try reader.int()
        maxSampleSize = try reader.int(limit: 1 << 40)
        firstPoolIndex = try reader.int(limit: 1 << 16)
        backpressureTimeoutNanoseconds = try reader.u64()
        let streams = inputs.filter { if case .stream = $0.kind { true } else { false } }.count
        guard streams == inbox.rings.count else {
            throw reader.failure("\(streams) stream inputs for \(inbox.rings.count) inbox rings")
        }
        for output in outputs {
            for edge in output.edges where edge.peer >= peerInboxes.count || edge.ring >= peerInboxes[edge.peer].rings.count {
                throw reader.failure("output '\(output.id)' names ring \(edge.ring) of peer inbox \(edge.peer)")
            }
        }
    }
}

extension ControlChannel {
    public func send(_ message: NodeMessage, fds: [Int32] = []) throws(TransportError) {
        try send(message.encoded, fds: fds)
    }

    /// Receives one protocol message and its descriptors (owned by the caller; closed here when the
    /// message is malformed).
    public func receiveMessage() throws(TransportError) -> (NodeMessage, [Int32]) {
        let (bytes, fds) = try receive()
        do {
            return (try NodeMessage(decoding: bytes), fds)
        } catch {
            for fd in fds { Glibc.close(fd) }
            throw error
        }
    }

    /// True when a whole message or end of stream can be read without waiting long.
    public func hasPendingInput() -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1
    }
}
