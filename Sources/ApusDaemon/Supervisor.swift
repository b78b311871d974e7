import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

/// How `apus run` runs a dataflow.
public struct RunOptions: Sendable {
    /// Stop the dataflow (gracefully) after this many seconds.
    public var stopAfter: Double?
    /// Seconds between STOP and SIGTERM, and between SIGTERM and SIGKILL's last resort.
    public var grace: Double = 10
    /// Seconds every node has to connect before the run fails naming the ones that did not.
    public var startupTimeout: Double = 30
    public var runBuild = true
    /// Give Python nodes Apus's `dora` module (dora-rs's node API), first on their path.
    /// APUS_DORA_PYTHON=0 in the environment or a node's env turns it off too.
    public var doraPython = true
    /// Colour `[node]` prefixes; nil: when standard output is a terminal.
    public var color: Bool?
    /// The environment nodes start from (and `$VAR`s were expanded with).
    public var environment: [String]

    public init(environment: [String]? = nil) {
        self.environment = environment ?? currentEnvironment()
    }
}

/// The coordinator of one dataflow run: spawns the nodes, wires them, relays pools, streams their
/// logs, supervises their exits (restarts, INPUT_CLOSED, NODE_FAILED, STOP) and runs the stop
/// ladder. Single-threaded: one poll loop over signals, control sockets and log pipes.
public final class Supervisor {
    let plan: RunPlan
    let options: RunOptions
    let runID: String
    let logDirectory: String
    private var nodes: [NodeRuntime] = []
    private let console: Console
    private var signals: Int32 = -1
    private var started = false
    private var stopping = false
    private var graceDeadline: UInt64?
    private var killDeadline: UInt64?
    private var stopAfterDeadline: UInt64?
    private var startupDeadline: UInt64 = 0
    private var interrupts = 0
    /// The folder holding the apus Python module, for the Python nodes' PYTHONPATH.
    private var pythonPath: String?
    /// The folder of Apus's `dora` module, for Python nodes that have not turned it off.
    private var doraPythonPath: String?

    public init(dataflow: DataflowDescriptor, options: RunOptions) {
        plan = RunPlan(dataflow)
        self.options = options
        runID = Self.makeRunID()
        logDirectory = dataflow.directory + "/out/" + runID
        console = Console(nodeIDs: dataflow.nodes.map(\.id), colored: options.color ?? (isatty(1) == 1))
    }

    /// Runs the nodes' build steps only (and prepares the Python module when there are Python
    /// nodes); returns the exit code for `apus build`.
    public func build() -> Int32 {
        guard watchSignals() else { return 1 }
        defer { close(signals) }
        if let code = Builder(plan: plan, console: console, environment: nodeEnvironmentBase(), signals: signals).run() {
            return code
        }
        preparePython()
        let steps = Set(plan.nodes.compactMap(\.descriptor.build)).count
        console.note("built \(plan.dataflow.file): \(steps) build step\(steps == 1 ? "" : "s") succeeded")
        return 0
    }

    /// Runs the dataflow to its end and returns the exit code for `apus run`.
    public func run() -> Int32 {
        guard watchSignals() else { return 1 }
        defer { close(signals) }
        if options.runBuild {
            if let code = Builder(plan: plan, console: console, environment: nodeEnvironmentBase(), signals: signals).run() {
                return code
            }
        }
        do {
            try prepare()
        } catch {
            console.note("\(error)")
            return 1
        }
        preparePython()
        console.note("running \(plan.dataflow.file) (\(nodes.count) node\(nodes.count == 1 ? "" : "s")), logs in \(relativeLogDirectory)/")
        let now = monotonicNanoseconds()
        startupDeadline = now &+ seconds(options.startupTimeout)
        if let stopAfter = options.stopAfter { stopAfterDeadline = now &+ seconds(stopAfter) }
        for node in nodes { spawn(node) }
        loop()
        return report()
    }

    /// Routes SIGINT, SIGTERM, SIGCHLD and SIGHUP to `signals`; false (reported) if impossible.
    private func watchSignals() -> Bool {
        signal(SIGPIPE, SIG_IGN)
        // A parent may have left these ignored, and an ignored signal never reaches a signalfd.
        for watched in [SIGINT, SIGTERM, SIGCHLD, SIGHUP] { signal(watched, SIG_DFL) }
        signals = [SIGINT, SIGTERM, SIGCHLD, SIGHUP].withUnsafeBufferPointer { apussys_signalfd($0.baseAddress, Int32($0.count)) }
        guard signals >= 0 else {
            console.note("cannot watch signals: \(String(cString: strerror(-signals)))")
            return false
        }
        return true
    }

    private var relativeLogDirectory: String {
        let file = plan.dataflow.file
        guard let slash = file.lastIndex(of: "/") else { return "out/\(runID)" }
        return "\(file[..<slash])/out/\(runID)"
    }

    // MARK: Set-up

    private func prepare() throws {
        guard mkdirs(logDirectory) else {
            throw SupervisorError("cannot create the log folder \(logDirectory): \(String(cString: strerror(errno)))")
        }
        for (index, nodePlan) in plan.nodes.enumerated() {
            let inbox = try Inbox(layout: nodePlan.inbox, name: nodePlan.descriptor.id)
            let node = NodeRuntime(index: index, plan: nodePlan, inbox: inbox)
            node.log = open(logDirectory + "/" + nodePlan.descriptor.id + ".log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            nodes.append(node)
        }
        for node in nodes where !node.plan.stdoutEdges.isEmpty {
            node.stdoutPublisher = try makeStdoutPublisher(for: node)
        }
    }

    /// Builds the apus Python module for the Python nodes, if there are any (see `PythonBinding`).
    private func preparePython() {
        guard plan.nodes.contains(where: { $0.descriptor.isPython }) else { return }
        let installation: Installation
        do {
            installation = try Installation.locate()
        } catch {
            console.note("no apus Python module to provide (\(error)); Python nodes need `pip install ./python`")
            return
        }
        do {
            pythonPath = try PythonBinding(
                python: python, installation: installation, environment: nodeEnvironmentBase(), directory: plan.dataflow.directory
            ).prepare()
            if options.doraPython { doraPythonPath = installation.pythonSource + "/compat" }
        } catch {
            // Python nodes that do not import apus still run; the others fail on the import, after this note.
            console.note("\(error)")
        }
    }

    /// The interpreter of Python nodes: $APUS_PYTHON, else python3.
    private var python: String {
        environmentValue(options.environment, "APUS_PYTHON") ?? "python3"
    }

    /// The publisher that turns a node's stdout lines into utf8 messages (`send_stdout_as`).
    private func makeStdoutPublisher(for node: NodeRuntime) throws(TransportError) -> Publisher {
        let key = nodes.count + node.index
        let edges = node.plan.stdoutEdges.map { EdgeTarget(inbox: nodes[$0.consumer].inbox, ring: $0.ring, bit: $0.bit) }
        let configuration = Publisher.Configuration(
            name: "\(node.id)-stdout", pool: node.plan.stdoutPool, largeSlotCount: 4, maxSampleSize: LineSplitter.maxLine * 4,
            allocationTimeoutNanoseconds: 100_000_000, backpressureTimeoutNanoseconds: 100_000_000)
        return try Publisher(configuration: configuration, outputs: [edges]) { [unowned self] pool in
            relay(pool: pool.index, layout: pool.layout, fds: [pool.data.fd, pool.control.fd], producer: key)
        }
    }

    private func nodeEnvironmentBase() -> [String] {
        mergeEnvironment(options.environment, plan.dataflow.env.map { ($0.name, $0.value.description) })
    }

    private func spawn(_ node: NodeRuntime) {
        let descriptor = node.plan.descriptor
        var arguments = [descriptor.resolvedPath] + descriptor.args
        var environment = mergeEnvironment(nodeEnvironmentBase(), descriptor.env.map { ($0.name, $0.value.description) } + [
            ("APUS_NODE_ID", descriptor.id), ("APUS_CONTROL_FD", "3"), ("APUS_RUN_ID", runID),
            ("APUS_DATAFLOW", plan.dataflow.file),
        ])
        if descriptor.isPython {
            arguments = [python, "-u"] + arguments
            if let pythonPath {
                // First on the path, before whatever the environment or the node's env had.
                var folders = [pythonPath]
                let variable = environmentValue(environment, "APUS_DORA_PYTHON")
                if let doraPythonPath, !["0", "false", "no", "off"].contains(variable?.lowercased() ?? "") {
                    folders.insert(doraPythonPath, at: 0)
                }
                let inherited = environmentValue(environment, "PYTHONPATH") ?? ""
                if !inherited.isEmpty { folders.append(inherited) }
                environment = mergeEnvironment(environment, [("PYTHONPATH", folders.joined(separator: ":"))])
            }
        }
        let daemonEnd: ControlChannel
        let nodeEnd: ControlChannel
        do {
            (daemonEnd, nodeEnd) = try ControlChannel.pair()
        } catch {
            fail(node, "cannot create its control socket: \(error)")
            return
        }
        do {
            let child = try ChildProcess.spawn(arguments, environment: environment, directory: plan.dataflow.directory, control: nodeEnd.fd)
            node.pid = child.pid
            node.stdout = child.stdout
            node.stderr = child.stderr
            node.channel = daemonEnd
            node.state = .spawned
            node.stopSent = false
            node.startedAt = monotonicNanoseconds()
            node.writeLog("--- started: \(arguments.joined(separator: " ")) (pid \(child.pid))")
        } catch {
            fail(node, "\(error)")
        }
    }

    /// A node that could not even be started: reported, and treated like a node that failed.
    private func fail(_ node: NodeRuntime, _ message: String) {
        console.note("node '\(node.id)': \(message)")
        node.failure = message
        finish(node, failed: true, message: message)
    }

    // MARK: The loop

    private func loop() {
        while !nodes.allSatisfy({ $0.state == .finished }) {
            var entries = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
            var owners: [(node: NodeRuntime, source: Source)] = []
            for node in nodes {
                for (fd, source) in [(node.channel?.fd ?? -1, Source.control), (node.stdout, .stdout), (node.stderr, .stderr)] where fd >= 0 {
                    entries.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                    owners.append((node, source))
                }
            }
            let timeout = pollTimeout()
            let ready = poll(&entries, nfds_t(entries.count), timeout)
            if ready < 0 && errno != EINTR {
                console.note("poll failed: \(String(cString: strerror(errno)))")
                killAll(reason: "was killed because apus run could not supervise it")
                return
            }
            if ready > 0 {
                for (offset, owner) in owners.enumerated() where entries[offset + 1].revents != 0 {
                    switch owner.source {
                    case .control: readControl(owner.node)
                    case .stdout: readOutput(owner.node, stderr: false)
                    case .stderr: readOutput(owner.node, stderr: true)
                    }
                }
                if entries[0].revents != 0 { handleSignals() }
            }
            handleDeadlines()
        }
    }

    private enum Source { case control, stdout, stderr }

    private func pollTimeout() -> Int32 {
        var deadlines: [UInt64] = [graceDeadline, killDeadline, stopAfterDeadline].compactMap { $0 }
        if !started { deadlines.append(startupDeadline) }
        for node in nodes {
            if case .waiting(let until) = node.state { deadlines.append(until) }
        }
        guard let next = deadlines.min() else { return -1 }
        let now = monotonicNanoseconds()
        return next <= now ? 0 : Int32(min((next - now) / 1_000_000 + 1, 60_000))
    }

    private func handleSignals() {
        while true {
            let signal = apussys_signalfd_read(signals)
            guard signal > 0 else { return }
            if signal == SIGCHLD {
                reapChildren()
            } else {
                interrupts += 1
                if interrupts == 1 {
                    console.note("stopping (signal \(signal)); again to kill every node now")
                    beginStop()
                } else {
                    console.note("killing every node")
                    killAll(reason: "was still running at the second interrupt")
                }
            }
        }
    }

    private func handleDeadlines() {
        let now = monotonicNanoseconds()
        if let stopAfter = stopAfterDeadline, now >= stopAfter {
            stopAfterDeadline = nil
            console.note("--stop-after elapsed: stopping")
            beginStop()
        }
        if !started, !stopping, now >= startupDeadline {
            let missing = nodes.filter { $0.state == .spawned || $0.state == .connected }
            for node in missing {
                node.failure = "never connected to the dataflow within the \(formatSeconds(options.startupTimeout)) s startup timeout "
                    + "(does it create its Node at start-up?)"
                console.note("node '\(node.id)' \(node.failure!)")
            }
            beginStop()
        }
        if let grace = graceDeadline, now >= grace {
            graceDeadline = nil
            for node in nodes where node.isAlive {
                node.ladderReason = "did not stop within the \(formatSeconds(options.grace)) s grace period"
                console.note("node '\(node.id)' did not stop within the \(formatSeconds(options.grace)) s grace period: sending SIGTERM")
                kill(-node.pid, SIGTERM)
            }
            killDeadline = now &+ seconds(min(options.grace, 2))
        }
        if let deadline = killDeadline, now >= deadline {
            killDeadline = nil
            killAll(reason: "did not exit after SIGTERM")
        }
        for node in nodes {
            if case .waiting(let until) = node.state, now >= until, !stopping {
                respawn(node)
            }
        }
    }

    // MARK: Control messages

    private func readControl(_ node: NodeRuntime) {
        guard let channel = node.channel else { return }
        let message: NodeMessage
        let fds: [Int32]
        do {
            (message, fds) = try channel.receiveMessage()
        } catch .disconnected {
            node.channel = nil
            return
        } catch {
            console.note("node '\(node.id)': \(error); closing its control socket")
            node.channel = nil
            return
        }
        switch message {
        case .hello(let id, _) where node.state == .spawned:
            guard id == node.id else {
                console.note("node '\(node.id)' says it is '\(id)'; closing its control socket")
                node.channel = nil
                return
            }
            sendSetup(node)
            // A node restarted after all its producers ended has nothing left to wait for.
            if stopping || node.allInputsClosed, !node.stopSent { node.stopSent = node.post(.stop) }
        case .pool(let producer, let index, let layout) where producer == node.index && fds.count == 2:
            do {
                let pool = try MappedPool(index: index, layout: layout, dataFD: fds[0], controlFD: fds[1], readsPayloads: false)
                node.pools.append(pool)
                relay(pool: index, layout: layout, fds: [pool.data.fd, pool.control.fd], producer: producer)
            } catch {
                console.note("node '\(node.id)' announced an unusable pool: \(error)")
            }
        case .ready where node.state == .connected:
            node.state = .ready
            if started { node.post(.start) } else { checkStartBarrier() }
        case .closeOutput(let output) where output < node.plan.outputs.count:
            closeEdges(node.plan.outputs[output])
        case .closeInput(let ring) where ring < node.plan.streams.count:
            node.timedOutRings.insert(ring)
            inputClosed(ring, of: node)
        default:
            for fd in fds { close(fd) }
            console.note("node '\(node.id)' sent an unexpected message (kind \(message.kind)); ignored")
        }
    }

    private func sendSetup(_ node: NodeRuntime) {
        let descriptor = node.plan.descriptor
        // Timers as they are; every other input is one of the plan's streams, filled in below.
        var inputs = descriptor.inputs.map { input in
            var period: UInt64 = 0
            if case .timer(let timer) = input.source { period = timer.periodNanoseconds }
            return NodeSetup.Input(id: input.id, source: input.source.description, kind: .timer(periodNanoseconds: period),
                                   timeoutNanoseconds: input.inputTimeout.map(seconds) ?? 0)
        }
        for (ring, stream) in node.plan.streams.enumerated() {
            inputs[stream.input].kind = .stream(
                producer: stream.producer, producerNode: nodes[plan.node(ofProducer: stream.producer)].id, ring: ring, bit: stream.bit)
        }
        var peers: [Int] = []
        let outputs = zip(descriptor.outputs, node.plan.outputs).map { id, edges in
            NodeSetup.Output(id: id, edges: edges.map { edge in
                if !peers.contains(edge.consumer) { peers.append(edge.consumer) }
                return NodeSetup.Edge(peer: peers.firstIndex(of: edge.consumer)!, ring: edge.ring, bit: edge.bit)
            })
        }
        let setup = NodeSetup(
            node: node.id, producer: node.index, inputs: inputs, inbox: node.inbox.layout, outputs: outputs,
            peerInboxes: peers.map { nodes[$0].inbox.layout }, pool: node.plan.pool, largeSlotCount: node.plan.largeSlotCount,
            maxSampleSize: RunPlan.maxSampleSize, firstPoolIndex: node.pools.count, backpressureTimeoutNanoseconds: 5_000_000_000)
        guard let channel = node.channel else { return }
        do {
            try channel.send(.setup(setup), fds: [node.inbox.segment.fd] + peers.map { nodes[$0].inbox.segment.fd })
            node.state = .connected
            for producer in plan.producers(of: node.index) {
                for pool in pools(ofProducer: producer) {
                    try channel.send(.pool(producer: producer, index: pool.index, layout: pool.layout), fds: [pool.dataFD, pool.controlFD])
                }
            }
        } catch {
            console.note("node '\(node.id)': cannot send its setup: \(error)")
            node.channel = nil
        }
    }

    private func pools(ofProducer key: Int) -> [(index: Int, layout: PoolLayout, dataFD: Int32, controlFD: Int32, view: PoolView)] {
        if key < nodes.count {
            return nodes[key].pools.map { ($0.index, $0.view.layout, $0.data.fd, $0.control.fd, $0.view) }
        }
        return (nodes[key - nodes.count].stdoutPublisher?.pools ?? []).map { ($0.index, $0.layout, $0.data.fd, $0.control.fd, $0.view) }
    }

    /// Makes a producer's new pool known to every connected consumer it feeds.
    private func relay(pool index: Int, layout: PoolLayout, fds: [Int32], producer: Int) {
        for consumer in nodes where consumer.plan.streams.contains(where: { $0.producer == producer }) {
            consumer.post(.pool(producer: producer, index: index, layout: layout), fds: fds)
        }
    }

    private func checkStartBarrier() {
        guard !started, !stopping else { return }
        let waiting = nodes.filter {
            switch $0.state {
            case .ready, .finished: false
            default: true
            }
        }
        guard waiting.isEmpty else { return }
        started = true
        for node in nodes { node.post(.start) }
    }

    // MARK: Output

    private func readOutput(_ node: NodeRuntime, stderr: Bool) {
        let fd = stderr ? node.stderr : node.stdout
        guard fd >= 0 else { return }
        let open: Bool
        if stderr {
            open = drainPipe(fd, into: &node.stderrLines) { line in
                node.remember(stderrLine: line)
                emit(node, line)
            }
        } else {
            open = drainPipe(fd, into: &node.stdoutLines) { line in
                emit(node, line)
                forwardStdout(node, line)
            }
        }
        if !open {
            close(fd)
            if stderr { node.stderr = -1 } else { node.stdout = -1 }
        }
    }

    private func emit(_ node: NodeRuntime, _ line: String) {
        console.line(node: node.index, id: node.id, line)
        node.writeLog(line)
    }

    private func forwardStdout(_ node: NodeRuntime, _ line: String) {
        guard let publisher = node.stdoutPublisher else { return }
        var line = line
        let sent = line.withUTF8 { bytes in
            Result { () throws(TransportError) in
                try publisher.send(UnsafeRawBufferPointer(bytes), output: 0, metadata: SampleMetadata(elementType: .utf8))
            }
        }
        if case .failure(let error) = sent {
            console.note("node '\(node.id)': stdout line not sent on '\(node.plan.descriptor.sendStdoutAs ?? "")': \(error)")
        }
    }

    // MARK: Exits

    private func reapChildren() {
        while true {
            var signaled: Int32 = 0
            var value: Int32 = 0
            let pid = apussys_reap(-1, 0, &signaled, &value)
            guard pid > 0 else { return }
            guard let node = nodes.first(where: { $0.pid == pid }) else { continue }
            exited(node, signaled: signaled != 0, value: value)
        }
    }

    private func exited(_ node: NodeRuntime, signaled: Bool, value: Int32) {
        if node.stdout >= 0 { readOutput(node, stderr: false) }
        if node.stderr >= 0 { readOutput(node, stderr: true) }
        let status = describeExit(signaled: signaled, value: value)
        node.writeLog("--- \(status)")
        let failed = signaled || value != 0
        node.detach()
        let policy = node.plan.descriptor.restartPolicy
        let maxRestarts = node.plan.descriptor.maxRestarts
        let restart = !stopping && (policy == .always || (policy == .onFailure && failed))
            && (maxRestarts == 0 || node.restarts < maxRestarts)
        if restart {
            releaseInputs(of: node)
            node.restarts += 1
            let delay = node.nextRestartDelay
            node.nextRestartDelay = min(max(delay * 2, delay), node.plan.descriptor.maxRestartDelay ?? .infinity)
            console.note("node '\(node.id)' \(status); restarting (\(node.restarts)\(maxRestarts > 0 ? " of \(maxRestarts)" : ""))"
                + (delay > 0 ? " in \(formatSeconds(delay)) s" : ""))
            node.state = .waiting(until: monotonicNanoseconds() &+ seconds(delay))
            return
        }
        if failed && node.failure == nil {
            node.failure = node.ladderReason.map { "\($0); \(status)" } ?? status
            console.note("node '\(node.id)' \(node.failure!)" + (node.restarts > 0 ? " after \(node.restarts) restart\(node.restarts == 1 ? "" : "s")" : ""))
        }
        finish(node, failed: failed, message: status)
    }

    /// The node is gone for good: its consumers see NODE_FAILED (if it failed) and INPUT_CLOSED.
    private func finish(_ node: NodeRuntime, failed: Bool, message: String) {
        node.state = .finished
        releaseInputs(of: node)
        if failed {
            for key in [node.index, nodes.count + node.index] {
                for consumer in nodes where consumer.plan.streams.contains(where: { $0.producer == key }) {
                    consumer.post(.producerFailed(producer: key, message: "node '\(node.id)' \(message)"))
                }
            }
        }
        closeEdges(Array(node.plan.outputs.joined()))
        node.stdoutPublisher?.closeOutputs()
        markClosed(node.plan.stdoutEdges)
        checkStartBarrier()
    }

    /// A consumer is gone: its producers stop feeding it, and what it held or had queued returns.
    private func releaseInputs(of node: NodeRuntime) {
        reportDrops(of: node)
        for (ring, stream) in node.plan.streams.enumerated() {
            Reclamation.releaseEdge(node.inbox.rings[ring], bit: stream.bit, pools: pools(ofProducer: stream.producer).map(\.view))
        }
    }

    /// Says how many messages each `drop_oldest` input of the node lost to a full queue, so no
    /// drop goes unseen. Called once per inbox, from `releaseInputs`, when its node is gone.
    private func reportDrops(of node: NodeRuntime) {
        for (ring, stream) in node.plan.streams.enumerated() {
            let dropped = node.inbox.rings[ring].dropped
            guard dropped > 0 else { continue }
            let input = node.plan.descriptor.inputs[stream.input]
            var text = "node '\(node.id)' input '\(input.id)': \(dropped) message\(dropped == 1 ? "" : "s") dropped "
                + "(queue_size \(input.queueSize) full, drop_oldest kept the newest; a larger queue_size or "
                + "queue_policy: backpressure keeps them all)"
            if node.timedOutRings.contains(ring) {
                text += "; its input_timeout of \(formatSeconds(input.inputTimeout ?? 0)) s closed it, and what came after was dropped"
            }
            console.note(text)
            node.writeLog("--- \(text)")
        }
    }

    private func closeEdges(_ edges: [RunPlan.Edge]) {
        for edge in edges { Reclamation.closeEdge(nodes[edge.consumer].inbox, ring: edge.ring) }
        markClosed(edges)
    }

    /// Records closed inputs; a node whose stream inputs have all closed gets STOP (its timers alone
    /// would keep it running for nothing).
    private func markClosed(_ edges: [RunPlan.Edge]) {
        for edge in edges { inputClosed(edge.ring, of: nodes[edge.consumer]) }
    }

    private func inputClosed(_ ring: Int, of consumer: NodeRuntime) {
        consumer.closedRings.insert(ring)
        if consumer.allInputsClosed, !consumer.stopSent {
            consumer.stopSent = consumer.post(.stop)
        }
    }

    /// Starts a node again after a failure, with a fresh inbox its producers are pointed at.
    private func respawn(_ node: NodeRuntime) {
        if !node.plan.streams.isEmpty {
            do {
                node.inbox = try Inbox(layout: node.plan.inbox, name: node.id)
            } catch {
                fail(node, "cannot create its inbox for the restart: \(error)")
                return
            }
            node.closedRings = []
            node.timedOutRings = []
            for (ring, stream) in node.plan.streams.enumerated() {
                let producer = nodes[plan.node(ofProducer: stream.producer)]
                let target = EdgeTarget(inbox: node.inbox, ring: ring, bit: stream.bit)
                if producer.state == .finished {
                    Reclamation.closeEdge(node.inbox, ring: ring)
                    node.closedRings.insert(ring)
                } else if stream.producer >= nodes.count {
                    try? producer.stdoutPublisher?.replaceEdge(bit: stream.bit, with: target)
                } else {
                    producer.post(.replaceEdge(output: stream.output, bit: stream.bit, ring: ring, layout: node.inbox.layout),
                                  fds: [node.inbox.segment.fd])
                }
            }
        }
        spawn(node)
    }

    // MARK: Stopping

    private func beginStop() {
        guard !stopping else { return }
        stopping = true
        for node in nodes {
            if case .waiting = node.state {
                node.state = .finished
                if node.restarts > 0 && node.failure == nil { node.failure = "stopped while waiting to restart" }
                finish(node, failed: false, message: "stopped")
            } else if node.isAlive, !node.stopSent {
                node.stopSent = node.post(.stop)
            }
        }
        graceDeadline = monotonicNanoseconds() &+ seconds(options.grace)
    }

    private func killAll(reason: String) {
        for node in nodes where node.isAlive {
            if node.ladderReason == nil || reason.hasPrefix("was still") { node.ladderReason = reason }
            kill(-node.pid, SIGKILL)
        }
    }

    // MARK: Report

    private func report() -> Int32 {
        let failed = nodes.filter { $0.failure != nil }
        guard !failed.isEmpty else { return 0 }
        var lines = ["dataflow \(plan.dataflow.file) failed:"]
        for node in failed {
            lines.append("  node '\(node.id)' \(node.failure!)")
            if !node.stderrTail.isEmpty {
                lines.append("    last \(node.stderrTail.count) line\(node.stderrTail.count == 1 ? "" : "s") of its stderr:")
                lines += node.stderrTail.map { "      \($0)" }
            }
            lines.append("    full log: \(relativeLogDirectory)/\(node.id).log")
        }
        writeAll(2, lines.joined(separator: "\n") + "\n")
        return 1
    }

    private static func makeRunID() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))-\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))-\(getpid())"
    }
}

struct SupervisorError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func seconds(_ value: Double) -> UInt64 {
    value <= 0 ? 0 : UInt64(min(value, 1e9) * 1e9)
}

func formatSeconds(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
}

