import ApusDataflow
import ApusTransport

/// How a validated dataflow is wired: every node's inbox rings, every output's edges with their
/// holder bits, and the pool each producer starts with. Pure arithmetic, decided before anything
/// is spawned.
public struct RunPlan: Sendable {
    /// Who publishes on an edge: a node itself, or the daemon for a node's stdout lines
    /// (`send_stdout_as`).
    public enum ProducerKey: Hashable, Sendable {
        case node(Int)
        case stdout(Int)

        /// The node behind the producer.
        public var node: Int {
            switch self {
            case .node(let index), .stdout(let index): index
            }
        }

        /// The number nodes know the producer by in `NodeMessage`s: a node's index, or 2^20 plus
        /// its index for its stdout (apart from every node's, also those that join later).
        public var wire: Int {
            switch self {
            case .node(let index): index
            case .stdout(let index): 1 << 20 + index
            }
        }
    }

    public struct Edge: Sendable, Equatable {
        public var consumer: Int
        public var ring: Int
        public var bit: Int
    }

    public struct Stream: Sendable, Equatable {
        /// Index of the input among the node's inputs.
        public var input: Int
        public var producer: ProducerKey
        public var output: Int
        public var bit: Int
    }

    public struct NodePlan: Sendable {
        public var descriptor: NodeDescriptor
        /// Stream inputs in ring order.
        public var streams: [Stream]
        public var inbox: InboxLayout
        /// Per declared output, the edges it feeds (empty for a `send_stdout_as` output: the daemon
        /// publishes that one).
        public var outputs: [[Edge]]
        public var pool: PoolLayout
        public var largeSlotCount: Int
        /// Edges fed by the daemon from this node's stdout lines (`send_stdout_as`) and from its
        /// log entries (`send_logs_as`): the two outputs of its daemon-side publisher.
        public var stdoutEdges: [Edge]
        public var logEdges: [Edge]
        public var stdoutPool: PoolLayout
    }

    public static let firstPoolPayload = 4096
    public static let maxSampleSize = 1 << 30

    public let dataflow: DataflowDescriptor
    public private(set) var nodes: [NodePlan] = []

    public init(_ dataflow: DataflowDescriptor) {
        self.dataflow = dataflow
        let index = Dictionary(uniqueKeysWithValues: dataflow.nodes.enumerated().map { ($1.id, $0) })
        let count = dataflow.nodes.count
        var edges = Array(repeating: [[Edge]](), count: count)
        var stdoutEdges = Array(repeating: [Edge](), count: count)
        var logEdges = Array(repeating: [Edge](), count: count)
        var nextBit: [ProducerKey: Int] = [:]
        for (node, descriptor) in dataflow.nodes.enumerated() {
            edges[node] = Array(repeating: [], count: descriptor.outputs.count)
        }
        var streams = Array(repeating: [Stream](), count: count)
        let outputIndex = dataflow.nodes.map { node in
            Dictionary(node.outputs.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        }
        var rings = Array(repeating: [InputRingLayout](), count: count)
        for (consumer, descriptor) in dataflow.nodes.enumerated() {
            for (inputIndex, input) in descriptor.inputs.enumerated() {
                guard case .output(let source, let outputID) = input.source, let producer = index[source],
                    let output = outputIndex[producer][outputID]
                else { continue }
                let fromStdout = dataflow.nodes[producer].sendStdoutAs == outputID
                let fromLogs = dataflow.nodes[producer].sendLogsAs == outputID
                let key: ProducerKey = fromStdout || fromLogs ? .stdout(producer) : .node(producer)
                let bit = nextBit[key, default: 1]
                nextBit[key] = bit + 1
                let edge = Edge(consumer: consumer, ring: rings[consumer].count, bit: bit)
                if fromStdout {
                    stdoutEdges[producer].append(edge)
                } else if fromLogs {
                    logEdges[producer].append(edge)
                } else {
                    edges[producer][output].append(edge)
                }
                streams[consumer].append(Stream(input: inputIndex, producer: key, output: output, bit: bit))
                rings[consumer].append(
                    InputRingLayout(
                        capacity: input.queueSize, policy: input.queuePolicy == .backpressure ? .backpressure : .dropOldest))
            }
        }
        for (node, descriptor) in dataflow.nodes.enumerated() {
            let queued = edges[node].joined().reduce(0) { $0 + rings[$1.consumer][$1.ring].capacity }
            let stdoutQueued = (stdoutEdges[node] + logEdges[node]).reduce(0) { $0 + rings[$1.consumer][$1.ring].capacity }
            nodes.append(
                NodePlan(
                    descriptor: descriptor, streams: streams[node], inbox: InboxLayout(rings: rings[node]), outputs: edges[node],
                    pool: PoolLayout(
                        // In flight: a full ring per edge, as many taken and still held by a
                        // consumer that takes a ring's worth at once (next_many), a few being
                        // written. Larger classes start at a ring's worth and grow when all are held.
                        slotCount: min(max(2 * queued + 8, 16), 4096), payloadCapacity: Self.firstPoolPayload,
                        holderWords: PoolLayout.holderWords(forEdges: nextBit[.node(node), default: 1])),
                    largeSlotCount: min(max(queued + 2, 4), 64),
                    stdoutEdges: stdoutEdges[node], logEdges: logEdges[node],
                    stdoutPool: PoolLayout(
                        slotCount: min(max(stdoutQueued + 8, 16), 4096), payloadCapacity: Self.firstPoolPayload,
                        holderWords: PoolLayout.holderWords(forEdges: nextBit[.stdout(node), default: 1]))))
        }
    }

    /// The plan of a node that joins the running dataflow (`apus node add`, or an inspector's
    /// consumer): `streams` are its stream inputs in ring order, with the holder bits the
    /// coordinator chose. Its outputs feed nobody yet; consumers that join later are added to them.
    public static func joining(_ descriptor: NodeDescriptor, streams: [Stream]) -> NodePlan {
        let rings = streams.map { stream in
            let input = descriptor.inputs[stream.input]
            return InputRingLayout(capacity: input.queueSize, policy: input.queuePolicy == .backpressure ? .backpressure : .dropOldest)
        }
        let emptyPool = PoolLayout(slotCount: 2, payloadCapacity: 64, holderWords: 1)
        let hasStdoutOutput = descriptor.sendStdoutAs != nil || descriptor.sendLogsAs != nil
        return NodePlan(
            descriptor: descriptor, streams: streams, inbox: InboxLayout(rings: rings),
            outputs: Array(repeating: [], count: descriptor.outputs.count),
            pool: descriptor.outputs.isEmpty ? emptyPool : PoolLayout(slotCount: 64, payloadCapacity: firstPoolPayload, holderWords: 1),
            largeSlotCount: 8, stdoutEdges: [], logEdges: [],
            stdoutPool: hasStdoutOutput ? PoolLayout(slotCount: 32, payloadCapacity: firstPoolPayload, holderWords: 1) : emptyPool)
    }

    /// The producers feeding node `consumer`.
    public func producers(of consumer: Int) -> Set<ProducerKey> {
        Set(nodes[consumer].streams.map(\.producer))
    }
}
