import ApusDaemon
import ApusDataflow
import ApusTransport
import ArgumentParser
import Foundation

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a dataflow: build, start and wire every node, stream their logs, stop them cleanly.",
        discussion: """
            Runs each node's `build` step, then starts every node in its own process group with the \
            dataflow file's folder as working directory, and connects outputs to inputs over shared \
            memory. Timers start once every node has connected. Node output is printed as `[node] line` \
            and written to out/<run-id>/<node>.log next to the dataflow file.

            The run ends when every node has exited. Ctrl-C (or SIGTERM) sends STOP to every node; \
            after the grace period the nodes still running get SIGTERM, then SIGKILL; a second Ctrl-C \
            kills them at once. Exits 0 when every node ended cleanly, 1 with a report naming each node \
            that failed (its exit status or signal and its last stderr lines), 130 when interrupted \
            during a build.

            Nothing is lost silently: at the end, every input that lost messages is named, with how \
            many were dropped from a full drop_oldest queue, queued for its node when it died, or sent \
            while its node was gone. What a node starts itself ends with it, even if apus run is killed.

            Durations are written like 500ms, 10s, 2m or 1.5 (seconds), at most a week.
            """
    )

    @Argument(help: "The dataflow file.", completion: .file(extensions: ["yml", "yaml"]))
    var file: String

    @Option(help: ArgumentHelp("Stop the dataflow gracefully after this long.", valueName: "duration"))
    var stopAfter: String?

    @Option(help: ArgumentHelp("Time nodes get to exit after STOP before they are terminated.", valueName: "duration"))
    var grace = "10s"

    @Option(help: ArgumentHelp("Time every node gets to connect before the run fails.", valueName: "duration"))
    var startupTimeout = "30s"

    @Option(
        help: ArgumentHelp(
            "Write the nodes' log files (<node>.log) into this folder, made if missing.",
            discussion: "By default they go to out/<run-id>/ next to the dataflow file.", valueName: "folder"))
    var logDir: String?

    @Option(help: .hidden)
    var eventsFD: Int32?

    @Option(
        help: ArgumentHelp(
            "The name `apus top`, `apus topic` and `apus node` find this run by.",
            discussion: "By default the dataflow file's name without .yml; the run id always works too."))
    var name: String?

    @Option(
        help: ArgumentHelp(
            "Record every output into this MCAP file from the first message (with backpressure: nothing is lost; see apus record).",
            valueName: "file"))
    var record: String?

    @OptionGroup var machines: AcrossMachinesOptions

    @Option(help: .hidden) var machinePart: String?
    @Option(help: .hidden) var localMachine: String?
    @Option(help: .hidden) var networkRun: String?
    @Option(help: .hidden) var placement: [String] = []

    @Flag(help: "Skip the nodes' build steps.")
    var noBuild = false

    @Flag(
        help: ArgumentHelp(
            "Do not give Python nodes Apus's `dora` module (dora-rs's node API); they then import whatever dora is installed.",
            discussion: "APUS_DORA_PYTHON=0 in the environment or in a node's env does the same."))
    var noDoraPython = false

    @Flag(inversion: .prefixedNo, help: "Colour node names (default: when standard output is a terminal).")
    var color: Bool?

    func validate() throws {
        for (name, value) in [
            ("--stop-after", stopAfter), ("--grace", grace), ("--startup-timeout", startupTimeout),
        ] {
            guard let value else { continue }
            if parseDuration(value) == nil {
                throw ValidationError(durationProblem(name, value))
            }
        }
    }

    func run() throws {
        var dataflow = try loadDataflow(file, nothing: "started")
        let here = machines.machine ?? dataflow.nodes.first(where: { $0.deployment.local })?.deployment.machine ?? "local"
        guard let executable = Installation.executablePath() else { throw ValidationError("cannot find this apus executable") }
        var options = RunOptions()
        if let record {
            // Across machines, every part adds the recorder too (on the machine the run started
            // on), so each sends it what it records.
            options.drainingNodes.insert(try RecordNode.add(to: &dataflow, file: absolutePath(record)))
        }
        if let part = machinePart, let run = networkRun {
            // This machine's part of a run started on another one (by this machine's daemon).
            dataflow = MachineSplit.part(
                of: MachineSplit.placed(dataflow, MachineSplit.placements(placement)), machine: part, local: localMachine ?? here, run: run,
                domain: machines.domain, executable: executable)
        }
        let acrossMachines =
            machinePart == nil
            && (!MachineSplit.remoteMachines(dataflow, local: here).isEmpty || dataflow.nodes.contains { !$0.deployment.labels.isEmpty })
        options.stopAfter = stopAfter.flatMap(parseDuration)
        options.grace = parseDuration(grace) ?? 10
        options.startupTimeout = parseDuration(startupTimeout) ?? 30
        options.runBuild = !noBuild
        options.eventsFD = eventsFD
        options.name = name
        options.logDirectory = logDir.map(absolutePath)
        options.color = color
        options.doraPython = !noDoraPython
        if acrossMachines {
            try runAcrossMachines(dataflow, options: options, here: here, executable: executable)
            return
        }
        let code = Supervisor(dataflow: dataflow, options: options).run()
        if code != 0 { throw ExitCode(code) }
    }

    /// Finds the other machines' daemons (before anything starts) and places the nodes chosen by
    /// labels, has each machine start its part, runs this machine's, then stops the others' and
    /// reports how each ended.
    func runAcrossMachines(_ written: DataflowDescriptor, options: RunOptions, here: String, executable: String) throws {
        var options = options
        options.stopRequest = StopRequest()
        let run = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        // DDS starts threads now; the run's signals must reach its signalfd, not them.
        SignalWatch.blockInThisThread(Supervisor.watchedSignals)
        let coordinator: MachineCoordinator
        let placements: [String: String]
        let dataflow: DataflowDescriptor
        let remote: [String]
        do {
            // Whole lines, written at once: the local nodes' lines go to the same standard output.
            coordinator = try MachineCoordinator(run: run, domain: machines.domain, failures: options.stopRequest) { line in
                writeAll(1, line + "\n")
            }
            let labels = try MachineSplit.labels(fromArguments: machines.label)
            let daemons = try coordinator.findDaemons(
                named: MachineSplit.remoteMachines(written, local: here),
                labelled: written.nodes.map(\.deployment.labels).filter { !$0.isEmpty }, here: labels,
                timeoutSeconds: machines.discoverySeconds)
            placements = try MachineSplit.place(written, here: here, labels: labels, daemons: daemons.labels)
            dataflow = MachineSplit.placed(written, placements)
            remote = MachineSplit.remoteMachines(dataflow, local: here)
            if let problem = daemons.versionProblem(remote) { throw PlacementError(problem) }
            if let twice = remote.first(where: daemons.duplicated.contains) {
                throw PlacementError(
                    "\(daemons.instances[twice]?.count ?? 2) daemons announce machine '\(twice)' on DDS domain \(machines.domain): each would start its part; stop all but one (a daemon killed a moment ago is forgotten within 10 s)"
                )
            }
        } catch {
            printError("apus run: \(file): \(error); nothing was started")
            throw ExitCode(1)
        }
        let path = absolutePath(file)
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
        for (node, machine) in placements.sorted(by: { $0.key < $1.key }) {
            printError("apus: node '\(node)' runs on machine '\(machine)' (its labels)")
        }
        let part = MachineSplit.part(of: dataflow, machine: here, local: here, run: run, domain: machines.domain, executable: executable)
        var folders: [String: String] = [:]
        for node in dataflow.nodes {
            let machine = MachineSplit.machine(of: node, local: here)
            guard let folder = node.deployment.workingDirectory else { continue }
            if let other = folders[machine], other != folder {
                coordinator.stop()
                printError(
                    "apus run: \(file): node '\(node.id)': working_dir \(folder) differs from \(other), given for machine '\(machine)' by another node; nothing was started"
                )
                throw ExitCode(1)
            }
            folders[machine] = folder
        }
        do {
            // The other machines list their part under this name (letters, digits, _ . -).
            let written = options.name ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            let name = String(written.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) ? $0 : "_" }.prefix(64))
            try coordinator.start(
                machines: remote, name: name, file: path, yaml: yaml, local: here, placements: placements, folders: folders,
                record: record.map(absolutePath) ?? "")
        } catch {
            coordinator.stop()
            printError("apus run: \(error)")
            throw ExitCode(1)
        }
        var code = Supervisor(dataflow: part, options: options).run()
        // The other parts end once their inputs close; what still runs then is stopped.
        var outcomes = coordinator.wait(timeoutSeconds: options.grace)
        if outcomes.contains(where: { if case .failure = $0.outcome { true } else { false } }) {
            coordinator.stop()
            outcomes = coordinator.wait(timeoutSeconds: options.grace + 5)
        }
        for (machine, outcome) in outcomes {
            switch outcome {
            case .success(0): continue
            case .success(let status): printError("apus: machine '\(machine)': its part exited with status \(status)")
            case .failure(let error): printError("apus: machine '\(machine)': \(error)")
            }
            code = code == 0 ? 1 : code
        }
        if code != 0 { throw ExitCode(code) }
    }
}

/// `path` from the current folder when it is relative.
func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// Seconds in "500ms", "10s", "2m", "1h", "1.5" (seconds); nil when malformed, negative or
/// longer than a week (`DataflowDescriptor.maximumDuration`).
func parseDuration(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60), ("h", 3600)]
    var seconds: Double?
    if let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }) {
        seconds = Double(text.dropLast(suffix.count)).map { $0 * scale }
    } else {
        seconds = Double(text)
    }
    guard let seconds, seconds >= 0, seconds <= DataflowDescriptor.maximumDuration else { return nil }
    return seconds
}

/// What a duration option says when its value is not one.
func durationProblem(_ option: String, _ value: String) -> String {
    "\(option): '\(value)' is not a duration of at most a week (write e.g. 500ms, 10s, 2m)"
}
