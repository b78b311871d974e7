// Setting a run up: log files, the stdout publishers, the Python module, and spawning nodes.
import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

extension Supervisor {
    func prepare() throws {
        guard mkdirs(logDirectory) else {
            throw SupervisorError("cannot create the log folder \(logDirectory): \(String(cString: strerror(errno)))")
        }
        do {
            inspection = try RunInspection(
                runID: runID, description: RunDescription(run: runID, name: runName, dataflow: dataflowFile, pid: getpid()))
        } catch {
            console.note("this run cannot be inspected (apus top): \(error)")
        }
        // The dataflow file as JSON, for nodes that ask what they run in (dora's dataflow_descriptor()).
        if let text = readTextFile(dataflowFile, limit: DataflowDescriptor.Limits.fileSize), let json = DataflowJSON.json(yaml: text),
            !replaceFile(descriptorJSON, json)
        {
            console.note("cannot write \(descriptorJSON): \(String(cString: strerror(errno))); nodes cannot read the dataflow from it")
        }
        for (index, nodePlan) in plan.nodes.enumerated() {
            let inbox = try Inbox(layout: nodePlan.inbox, name: nodePlan.descriptor.id)
            let node = NodeRuntime(index: index, plan: nodePlan, inbox: inbox)
            node.log = open(logPath(of: node), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if node.log < 0 {
                console.note(
                    "node '\(node.id)': cannot create its log file \(logPath(of: node)): \(String(cString: strerror(errno))); "
                        + "its output is shown here only")
            }
            nodes.append(node)
        }
        for node in nodes where !node.plan.stdoutEdges.isEmpty || !node.plan.logEdges.isEmpty {
            node.stdoutPublisher = try makeStdoutPublisher(for: node)
        }
    }

    /// Builds the apus Python module for the Python nodes and operators, if there are any (see `PythonBinding`).
    func preparePython(always: Bool = false) {
        guard always || plan.nodes.contains(where: { $0.descriptor.usesPython }) else { return }
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
            doraPythonPath = installation.pythonSource + "/compat"
        } catch {
            // Python nodes that do not import apus still run; the others fail on the import, after this note.
            console.note("\(error)")
        }
    }

    /// Finds the operator runtime, if a node hosts operators.
    func prepareOperatorRuntime() {
        guard plan.nodes.contains(where: { $0.descriptor.isRuntime }) else { return }
        do {
            let runtime = try Installation.locate().operatorRuntime
            if access(runtime, X_OK) == 0 {
                operatorRuntime = runtime
            } else {
                operatorRuntimeProblem = "the operator runtime '\(runtime)' is missing (rebuild or reinstall Apus)"
            }
        } catch {
            operatorRuntimeProblem = "\(error)"
        }
    }

    /// The interpreter of Python nodes: $APUS_PYTHON, else python3.
    private var python: String {
        environmentValue(options.environment, "APUS_PYTHON") ?? "python3"
    }

    /// The publisher that turns a node's stdout lines into utf8 messages (`send_stdout_as`).
    func makeStdoutPublisher(for node: NodeRuntime) throws(TransportError) -> Publisher {
        let key = RunPlan.ProducerKey.stdout(node.index)
        func targets(_ edges: [RunPlan.Edge]) -> [EdgeTarget] {
            edges.map { EdgeTarget(inbox: nodes[$0.consumer].inbox, ring: $0.ring, bit: $0.bit) }
        }
        let configuration = Publisher.Configuration(
            name: "\(node.id)-stdout", pool: node.plan.stdoutPool, largeSlotCount: 4, maxSampleSize: LineSplitter.maxLine * 4,
            allocationTimeoutNanoseconds: 100_000_000, backpressureTimeoutNanoseconds: 100_000_000)
        let outputs = [targets(node.plan.stdoutEdges), targets(node.plan.logEdges)]
        return try Publisher(configuration: configuration, outputs: outputs) { [unowned self] pool in
            relay(pool: pool.index, layout: pool.layout, fds: [pool.data.fd, pool.control.fd], producer: key)
        }
    }

    /// What the runtime type check holds a node's outputs to (ApusNode's OutputContracts): a line
    /// per output with a declared type or required metadata; nil if none has.
    static func outputContracts(_ descriptor: NodeDescriptor) -> String? {
        let lines = descriptor.outputs.compactMap { output -> String? in
            let type = descriptor.outputTypes.first { $0.port == output }?.type
            let keys = descriptor.outputMetadata[output] ?? []
            guard type != nil || !keys.isEmpty else { return nil }
            return [output, type?.elementTypeName ?? "-", type?.description ?? "-", keys.joined(separator: ",")].joined(separator: "\t")
        }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    /// The dataflow file, absolute (nodes run in its folder, not where `apus run` was started).
    var dataflowFile: String {
        plan.dataflow.directory + "/" + (plan.dataflow.file.split(separator: "/").last.map(String.init) ?? plan.dataflow.file)
    }

    var descriptorJSON: String { logDirectory + "/dataflow.json" }

    func nodeEnvironmentBase() -> [String] {
        mergeEnvironment(options.environment, plan.dataflow.env.map { ($0.name, $0.value.description) })
    }

    func spawn(_ node: NodeRuntime) {
        let descriptor = node.plan.descriptor
        var arguments = [descriptor.resolvedPath] + descriptor.args
        var operators: [(String, String)] = []
        if descriptor.isRuntime {
            guard let runtime = operatorRuntime else {
                fail(node, "cannot host operators: \(operatorRuntimeProblem ?? "no operator runtime")")
                return
            }
            arguments = [runtime]
            let specs = descriptor.operators.map { described in
                OperatorSpec(
                    kind: described.kind.name, id: described.id, location: described.kind.resolvedPath,
                    fuelPerEvent: described.limits?.fuelPerEvent ?? 0, memoryLimit: described.limits?.memory ?? 0,
                    restartPolicy: described.restartPolicy.rawValue, maxRestarts: UInt64(described.maxRestarts),
                    function: described.kind.function,
                    parameters: described.params.map { .init(name: $0.name, value: $0.value.description) })
            }
            operators = [
                (OperatorSpec.environmentName, OperatorSpec.encode(specs)),
                ("APUS_OPERATOR_QUALIFIED", descriptor.isSingleOperator ? "0" : "1"),
            ]
        }
        var environment = mergeEnvironment(
            nodeEnvironmentBase(),
            descriptor.env.map { ($0.name, $0.value.description) } + [
                ("APUS_NODE_ID", descriptor.id), ("APUS_CONTROL_FD", "3"), ("APUS_RUN_ID", runID),
                ("APUS_DATAFLOW", dataflowFile), ("APUS_DATAFLOW_JSON", descriptorJSON), ("APUS_RESTART_COUNT", String(node.restarts)),
            ] + operators)
        if let wait = descriptor.wait {
            environment = mergeEnvironment(environment, [("APUS_WAIT", wait.rawValue)])
        }
        if let timeout = descriptor.healthCheckTimeout {
            environment = mergeEnvironment(environment, [("APUS_HEALTH_CHECK_TIMEOUT", String(timeout))])
        }
        if let contracts = Self.outputContracts(descriptor) {
            environment = mergeEnvironment(environment, [("APUS_OUTPUT_CONTRACTS", contracts)])
        }
        if descriptor.isPython { arguments = [python, "-u"] + arguments }
        if descriptor.usesPython, let pythonPath {
            // First on the path, before whatever the environment or the node's env had. Python
            // operators always get Apus's dora module: it is their API (class Operator, DoraStatus).
            var folders = [pythonPath]
            let variable = environmentValue(environment, "APUS_DORA_PYTHON")
            let doraWanted =
                descriptor.isRuntime || (options.doraPython && !["0", "false", "no", "off"].contains(variable?.lowercased() ?? ""))
            if let doraPythonPath, doraWanted { folders.insert(doraPythonPath, at: 0) }
            let inherited = environmentValue(environment, "PYTHONPATH") ?? ""
            if !inherited.isEmpty { folders.append(inherited) }
            environment = mergeEnvironment(environment, [("PYTHONPATH", folders.joined(separator: ":")), ("APUS_PYTHON", python)])
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
            guardian?.watch(child.pid)
            let cpus = descriptor.cpuAffinity.map(Int32.init)
            if !cpus.isEmpty, case let error = apussys_set_affinity(child.pid, cpus, Int32(cpus.count)), error != 0 {
                console.note(
                    "node '\(node.id)': cannot keep it to CPUs \(descriptor.cpuAffinity) (cpu_affinity): \(String(cString: strerror(error)))"
                )
            }
            node.stdout = child.stdout
            node.stderr = child.stderr
            node.channel = daemonEnd
            node.state = .spawned
            node.stopSent = false
            node.startedAt = monotonicNanoseconds()
            node.lastHeard = node.startedAt
            writeLog(node, "--- started: \(arguments.joined(separator: " ")) (pid \(child.pid))")
        } catch {
            fail(node, "\(error)")
        }
    }

    /// A node that could not even be started: reported, and treated like a node that failed.
    func fail(_ node: NodeRuntime, _ message: String) {
        console.note("node '\(node.id)': \(message)")
        node.failure = message
        finish(node, failed: true, message: message)
    }
}
