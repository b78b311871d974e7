import ApusNetwork
import ApusTransport
import CApusSys
import Dispatch
import Glibc
import Synchronization

/// Whether this process has joined its dataflow: the control descriptor can be taken once.
private let joinedDataflow = Atomic<Bool>(false)

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

    let channel: ControlChannel
    let setup: NodeSetup
    let inbox: Inbox
    let subscriber: Subscriber
    var publisher: Publisher!
    /// Outputs read on other machines, which this process writes to DDS itself.
    var remote: RemoteOutputs?
    /// The runtime type check, when APUS_RUNTIME_TYPE_CHECK asks for it.
    let contracts: OutputContracts?
    /// Set when the node has a `health_check_timeout`.
    let heartbeat = Heartbeat.fromEnvironment()
    /// Inbox ring → index into `inputIDs`.
    let ringInputs: [Int]
    // State below is only touched under the node's locks (receive, send, control), never through overlapping
    // accesses, so it skips the runtime exclusivity checks (a measurable share of a hand-off).
    @exclusivity(unchecked) var timers: [Timer] = []
    /// Per output, whether `closeOutput` closed it (checked on every send: an array, not a set).
    @exclusivity(unchecked) var closedOutputs: [Bool] = []
    @exclusivity(unchecked) var finished = false

    let receiveLock = Lock()
    let sendLock = Lock()
    /// Guards the control socket and what arrives on it: `pending`, `knownPools`.
    let controlLock = Lock()
    @exclusivity(unchecked) var pending: [Event] = []
    @exclusivity(unchecked) var knownPools: [Int: [Int: MappedPool]] = [:]
    @exclusivity(unchecked) var started = false
    /// New inboxes of restarted consumers, by edge bit, until the publisher takes them (under
    /// `sendLock`, which the thread reading the control socket may not be able to take).
    let edgeLock = Lock()
    @exclusivity(unchecked) var replacedEdges: [Int: EdgeTarget] = [:]
    /// Edges of consumers that joined or left the running dataflow, in the order they came.
    @exclusivity(unchecked) var edgeChanges: [EdgeChange] = []

    enum EdgeChange {
        case add(output: Int, EdgeTarget)
        case remove(bit: Int)
    }

    struct Timer {
        var input: Int
        var period: UInt64
        var deadline: UInt64
    }

    /// A stream input with an `input_timeout`: closed when nothing arrives before `deadline`.
    struct InputTimeout {
        var ring: Int
        var length: UInt64
        var deadline: UInt64
    }
    @exclusivity(unchecked) var inputTimeouts: [InputTimeout] = []
    /// Whether the last event `next` returned was a timer tick (timers and the inbox take turns).
    @exclusivity(unchecked) var tickServedLast = false

    /// Joins the dataflow this process was started in, as `apus run` set up its environment.
    /// Returns once every node of the dataflow is connected (timers start then).
    public convenience init() throws(NodeError) {
        try self.init(beforeStart: nil)
    }

    /// Joins like `init()`, and runs `prepare` once the node is set up but before it tells the
    /// coordinator it is ready: the operator runtime loads its operators there, so timers wait
    /// for them (a Numba operator compiles for a while) as they wait for a node's imports.
    @_spi(CAPI) public convenience init(beforeStart prepare: ((Node) -> Void)?) throws(NodeError) {
        guard !joinedDataflow.load(ordering: .acquiring) else { throw .alreadyJoined }
        guard let id = getenv("APUS_NODE_ID").map({ String(cString: $0) }),
            let fdText = getenv("APUS_CONTROL_FD").map({ String(cString: $0) }), let fd = Int32(fdText), fd >= 0,
            fcntl(fd, F_GETFD) >= 0
        else {
            let program = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "this program"
            throw .notInDataflow(program: program)
        }
        guard !joinedDataflow.exchange(true, ordering: .acquiringAndReleasing) else { throw .alreadyJoined }
        unsetenv("APUS_CONTROL_FD")
        apussys_line_buffer_stdout()
        try self.init(id: id, channel: ControlChannel(adopting: fd), prepare: prepare)
    }

    init(id: String, channel: ControlChannel, prepare: ((Node) -> Void)? = nil) throws(NodeError) {
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
            contracts = OutputContracts.fromEnvironment(outputs: outputIDs)
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
            // The dataflow's `wait` key; unset (a node started by hand): adaptive.
            if let text = getenv("APUS_WAIT").map({ String(cString: $0) }), let policy = WaitPolicy(rawValue: text) {
                subscriber.waitPolicy = policy
            }
            let configuration = Publisher.Configuration(
                name: setup.node, pool: setup.pool, largeSlotCount: setup.largeSlotCount, maxSampleSize: setup.maxSampleSize,
                backpressureTimeoutNanoseconds: setup.backpressureTimeoutNanoseconds, firstPoolIndex: setup.firstPoolIndex)
            let outputs = setup.outputs.map { $0.edges.map { EdgeTarget(inbox: peers[$0.peer], ring: $0.ring, bit: $0.bit) } }
            let producer = setup.producer
            publisher = try Publisher(configuration: configuration, outputs: outputs) { (pool: SamplePool) throws(TransportError) in
                try channel.send(.pool(producer: producer, index: pool.index, layout: pool.layout), fds: [pool.data.fd, pool.control.fd])
            }
            publisher.edgeReplacementWait = { bit, deadline in box.node?.awaitReplacedEdge(bit: bit, deadline: deadline) }
            remote = Self.remoteOutputs(setup: setup, peers: peers)
            // The bridge-out only keeps what was sent until the reading machines have it: it is
            // woken once half its ring waits (or after 100 ms by itself), not for every message.
            for (index, output) in (remote?.outputs ?? []).enumerated() {
                if let output { publisher.deferRinging(output: index, ring: output.ring, untilQueued: output.ring.layout.capacity / 2) }
            }
            prepare?(self)
            try channel.send(.ready)
            // Wait for the start barrier; a STOP before it (the run is stopping) ends the wait too.
            while !started, !pending.contains(where: \.isStop) {
                try controlLock.locked { () throws(TransportError) in try handleNextMessage() }
            }
            applyEdgeChanges()
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

    /// Where `events` waits, so no task of the cooperative pool blocks.
    let waitQueue = DispatchQueue(label: "apus.node.events")
}

extension Node {
    /// The outputs that `RemoteOutputsVariable.name` says are read on other machines. Without
    /// DDS (or with a value that does not fit this node) the bridge-out carries them alone, so a
    /// problem is said once and is no failure.
    static func remoteOutputs(setup: NodeSetup, peers: [Inbox]) -> RemoteOutputs? {
        guard let text = getenv(RemoteOutputsVariable.name).map({ String(cString: $0) }), !text.isEmpty else { return nil }
        do {
            let edges = setup.outputs.map { output in output.edges.map { (consumer: $0.consumer, ring: peers[$0.peer].rings[$0.ring]) } }
            return try RemoteOutputs(
                try RemoteOutputsVariable(text), node: setup.node, outputIDs: setup.outputs.map(\.id), edges: edges)
        } catch {
            _ = writeAll(STDERR_FILENO, "apus: node '\(setup.node)': \(error); its messages to other machines go through the bridge\n")
            return nil
        }
    }
}

extension Node {
    /// Joins a running dataflow as an inspector's consumer (`apus topic`), over `channel`: the
    /// run's inspection socket after the run accepted it as node `id`. Returns once it receives.
    @_spi(Inspection) public convenience init(inspecting channel: ControlChannel, id: String) throws(NodeError) {
        try self.init(id: id, channel: channel)
    }

    /// What each stream input's `drop_oldest` queue dropped so far, from its ring in shared memory
    /// (readable after the dataflow has ended too).
    @_spi(Inspection) public var droppedPerInput: [String: UInt64] {
        var dropped: [String: UInt64] = [:]
        for (ring, input) in ringInputs.enumerated() { dropped[inputIDs[input], default: 0] += inbox.rings[ring].dropped }
        return dropped
    }
}
