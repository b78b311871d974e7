import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

/// The coordinator of one dataflow run: spawns the nodes, wires them, relays pools, streams their
/// logs, supervises their exits (restarts, INPUT_CLOSED, NODE_FAILED, STOP) and runs the stop
/// ladder. Single-threaded: one poll loop over signals, control sockets and log pipes. Its jobs
/// are in the `Supervisor+*.swift` files.
public final class Supervisor {
    /// The signals a run reads from its signalfd.
    public static let watchedSignals = [SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGCHLD]
    let plan: RunPlan
    let options: RunOptions
    let runID: String
    let logDirectory: String
    var nodes: [NodeRuntime] = []
    let console: Console
    /// SIGINT, SIGTERM, SIGHUP (stop), SIGUSR1 (kill every node now: `apus stop`'s end of grace)
    /// and SIGCHLD, read in the loop.
    var signals: SignalWatch?
    var started = false
    var stopping = false
    var graceDeadline: UInt64?
    var killDeadline: UInt64?
    var stopAfterDeadline: UInt64?
    /// When nodes with a health_check_timeout are next checked (every health_check_interval).
    var healthSweepDeadline: UInt64?
    /// Once every node has ended: until when inspectors may take what is queued for them.
    var inspectorsDeadline: UInt64?
    /// Where `apus top` asks this run for snapshots; nil if it could not be made.
    var inspection: RunInspection?
    var startupDeadline: UInt64 = 0
    var interrupts = 0
    /// The folder holding the apus Python module, for the Python nodes' PYTHONPATH.
    var pythonPath: String?
    /// The program runtime nodes run, or why there is none (`prepareOperatorRuntime`).
    var operatorRuntime: String?
    var operatorRuntimeProblem: String?
    /// Kills the nodes' process groups if this process dies without stopping them.
    var guardian: GroupGuardian?
    /// The folder of Apus's `dora` module, for Python nodes that have not turned it off.
    var doraPythonPath: String?

    public init(dataflow: DataflowDescriptor, options: RunOptions) {
        plan = RunPlan(dataflow)
        self.options = options
        runID = Self.makeRunID()
        logDirectory = options.logDirectory ?? dataflow.directory + "/out/" + runID
        console = Console(nodeIDs: dataflow.nodes.map(\.id), colored: options.color ?? (isatty(1) == 1))
    }

    /// Runs the nodes' build steps only (and prepares the Python module when there are Python
    /// nodes); returns the exit code for `apus build`.
    public func build() -> Int32 {
        guard let signals = watchSignals() else { return 1 }
        if let code = Builder(plan: plan, console: console, environment: nodeEnvironmentBase(), signals: signals.fd).run() {
            return code
        }
        preparePython()
        prepareOperatorRuntime()
        let steps = Set(plan.nodes.compactMap(\.descriptor.build)).count
        console.note("built \(plan.dataflow.file): \(steps) build step\(steps == 1 ? "" : "s") succeeded")
        return 0
    }

    /// Runs the dataflow to its end and returns the exit code for `apus run`.
    public func run() -> Int32 {
        defer { inspection = nil }  // its socket and description go with the run
        guard let signals = watchSignals() else { return 1 }
        if options.runBuild {
            if let code = Builder(plan: plan, console: console, environment: nodeEnvironmentBase(), signals: signals.fd).run() {
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
        prepareOperatorRuntime()
        console.note("running \(plan.dataflow.file) (\(nodes.count) node\(nodes.count == 1 ? "" : "s")), logs in \(relativeLogDirectory)/")
        let now = monotonicNanoseconds()
        startupDeadline = now &+ seconds(options.startupTimeout)
        if let stopAfter = options.stopAfter { stopAfterDeadline = now &+ seconds(stopAfter) }
        if plan.dataflow.nodes.contains(where: { $0.healthCheckTimeout != nil }) {
            healthSweepDeadline = now &+ seconds(plan.dataflow.healthCheckInterval)
        }
        do {
            guardian = try GroupGuardian()
        } catch {
            console.note("\(error); should apus run be killed, what its nodes started may outlive it")
        }
        for node in nodes { spawn(node) }
        loop()
        guardian = nil
        for node in nodes where node.origin != .attached { reportDrops(of: node) }  // an inspector reports its own
        return report()
    }

    /// Starts watching `signals`; nil (reported) if impossible.
    func watchSignals() -> SignalWatch? {
        signal(SIGPIPE, SIG_IGN)
        do {
            signals = try SignalWatch(Self.watchedSignals)
        } catch {
            console.note("\(error)")
        }
        return signals
    }

    var relativeLogDirectory: String {
        if let chosen = options.logDirectory { return chosen }
        let file = plan.dataflow.file
        guard let slash = file.lastIndex(of: "/") else { return "out/\(runID)" }
        return "\(file[..<slash])/out/\(runID)"
    }

    static func makeRunID() -> String {
        "\(utcStamp())-\(getpid())"
    }

    /// The time now in UTC as YYYYMMDD-HHMMSS (run ids, recordings' default names).
    public static func utcStamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))-\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))"
    }

    // MARK: The loop

    func loop() {
        // Inspectors do not keep a run going: once every node has ended, their inputs are closed,
        // and they get the grace period to take what is queued for them (a recorder writes it
        // all) and leave; then their sockets close.
        defer { for node in nodes where node.origin == .attached { inspectorLeft(node) } }
        while !nodes.allSatisfy({ $0.state == .finished || $0.origin == .attached })
            || !inspectorsHaveLeft(now: monotonicNanoseconds())
        {
            var entries = [
                pollfd(fd: signals?.fd ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: inspection?.listener.fd ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stopping ? -1 : options.stopRequest?.fd ?? -1, events: Int16(POLLIN), revents: 0),
            ]
            let firstNodeEntry = entries.count
            var owners: [(node: NodeRuntime, source: Source)] = []
            for node in nodes {
                for (fd, source) in [(node.channel?.fd ?? -1, Source.control), (node.stdout, .stdout), (node.stderr, .stderr)] where fd >= 0
                {
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
                for (offset, owner) in owners.enumerated() where entries[firstNodeEntry + offset].revents != 0 {
                    switch owner.source {
                    case .control: readControl(owner.node)
                    case .stdout: readOutput(owner.node, stderr: false)
                    case .stderr: readOutput(owner.node, stderr: true)
                    }
                }
                if entries[0].revents != 0 { handleSignals() }
                if entries[1].revents != 0 { serveInspection() }
                if entries[2].revents != 0, let reason = options.stopRequest?.take() {
                    console.note("stopping: \(reason)")
                    beginStop()
                }
            }
            handleDeadlines()
        }
    }

    enum Source { case control, stdout, stderr }

    func pollTimeout() -> Int32 {
        var deadlines: [UInt64] = [graceDeadline, killDeadline, stopAfterDeadline, healthSweepDeadline, inspectorsDeadline].compactMap {
            $0
        }
        if !started && !stopping { deadlines.append(startupDeadline) }
        for node in nodes {
            if case .waiting(let until) = node.state { deadlines.append(until) }
            if let killAt = node.killAt { deadlines.append(killAt) }
        }
        guard let next = deadlines.min() else { return -1 }
        let now = monotonicNanoseconds()
        return next <= now ? 0 : Int32(min((next - now) / 1_000_000 + 1, 60_000))
    }

    func handleSignals() {
        while let signal = signals?.next() {
            if signal == SIGCHLD {
                reapChildren()
            } else if signal == SIGUSR1 {
                console.note("killing every node (asked by apus stop at the end of its grace period)")
                killAll(reason: "was still running at the end of the grace period given to apus stop")
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

    func handleDeadlines() {
        let now = monotonicNanoseconds()
        if let stopAfter = stopAfterDeadline, now >= stopAfter {
            stopAfterDeadline = nil
            console.note("--stop-after elapsed: stopping")
            beginStop()
        }
        if !started, !stopping, now >= startupDeadline {
            let missing = nodes.filter { $0.state == .spawned || $0.state == .connected }
            for node in missing {
                node.failure =
                    "never connected to the dataflow within the \(formatSeconds(options.startupTimeout)) s startup timeout "
                    + "(does it create its Node at start-up?)"
                console.note("node '\(node.id)' \(node.failure!)")
                // One that never said hello cannot get STOP: no grace period to wait for it.
                if node.state == .spawned {
                    kill(-node.pid, SIGTERM)
                    node.killAt = now &+ seconds(min(options.grace, 2))
                }
            }
            beginStop()
        }
        for node in nodes where node.isAlive {
            if let killAt = node.killAt, now >= killAt {
                node.killAt = nil
                kill(-node.pid, SIGKILL)
            }
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
        if let sweep = healthSweepDeadline, now >= sweep {
            healthSweepDeadline = now &+ seconds(plan.dataflow.healthCheckInterval)
            checkHealth(now: now)
        }
    }

    /// Kills each node with a `health_check_timeout` that has said nothing for longer (a node
    /// stuck in its own code); its restart_policy then applies.
    func checkHealth(now: UInt64) {
        guard !stopping else { return }  // the grace period takes over
        for node in nodes where node.isAlive && node.killAt == nil {
            guard let timeout = node.plan.descriptor.healthCheckTimeout, now &- node.lastHeard > seconds(timeout) else { continue }
            node.ladderReason =
                "said nothing for \(formatSeconds(Double(now &- node.lastHeard) / 1e9)) s (health_check_timeout \(formatSeconds(timeout)) s)"
            console.note("node '\(node.id)' \(node.ladderReason!): killing it")
            kill(-node.pid, SIGKILL)
            node.killAt = nil
        }
    }
}

struct SupervisorError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func seconds(_ value: Double) -> UInt64 {
    value <= 0 ? 0 : UInt64(min(value, 1e9) * 1e9)
}

/// "10" or "0.5"; never traps, whatever the value.
func formatSeconds(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
