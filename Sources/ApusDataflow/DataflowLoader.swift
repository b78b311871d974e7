import Foundation
import Yams

/// Reads a dataflow file into a validated `DataflowDescriptor`, or reports every problem in it.
public struct DataflowLoader: Sendable {
    /// Variables used for `$VAR` expansion in env strings and for finding bare commands on `PATH`.
    public var environment: [String: String]
    /// Whether node `path`s must exist. `apus graph` can draw a dataflow whose nodes are not built yet.
    public var checksPaths: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, checksPaths: Bool = true) {
        self.environment = environment
        self.checksPaths = checksPaths
    }

    /// Loads the file at `file` (relative to the current directory or absolute).
    public func load(file: String) throws(DataflowErrors) -> DataflowDescriptor {
        let url = URL(fileURLWithPath: file)
        let yaml: String
        do {
            yaml = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw DataflowErrors([DataflowDiagnostic(file: file, line: nil, column: nil, message: Self.readFailure(file))])
        }
        return try parse(yaml: yaml, file: file, directory: url.deletingLastPathComponent().standardizedFileURL.path)
    }

    /// Parses YAML text as if it were the file `file` in the folder `directory`.
    public func parse(yaml: String, file: String, directory: String) throws(DataflowErrors) -> DataflowDescriptor {
        var parser = DataflowParser(file: file, directory: directory, loader: self)
        let descriptor = parser.parse(yaml)
        if let descriptor, parser.diagnostics.isEmpty { return descriptor }
        throw DataflowErrors(parser.sortedDiagnostics)
    }

    private static func readFailure(_ file: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) {
            return "no such file"
        }
        if isDirectory.boolValue { return "is a folder, not a dataflow file" }
        if !FileManager.default.isReadableFile(atPath: file) { return "cannot be read (permission denied)" }
        return "is not UTF-8 text"
    }
}

/// Where a problem sits below the file root: the node label and the enclosing parts.
struct Scope {
    var node: String?
    var context: [String] = []

    func with(_ part: String) -> Scope {
        Scope(node: node, context: context + [part])
    }
}

/// One pass over a composed YAML tree. Collects diagnostics instead of stopping at the first.
struct DataflowParser {
    static let rootKeys = ["nodes", "env"]
    static let nodeKeys = [
        "id", "name", "description", "path", "args", "env", "build", "inputs", "outputs",
        "restart_policy", "max_restarts", "restart_delay", "max_restart_delay", "send_stdout_as",
    ]
    static let inputKeys = ["source", "queue_size", "queue_policy", "input_timeout"]
    /// dora keys refused by name, so a dora user learns it is a missing feature and not a typo.
    static let unsupportedRootKeys: Set = ["communication", "deploy", "_unstable_deploy", "_unstable_debug", "debug"]
    static let unsupportedNodeKeys: Set = [
        "operators", "operator", "custom", "deploy", "_unstable_deploy", "output_types",
        "git", "branch", "tag", "rev",
    ]

    let file: String
    let directory: String
    let loader: DataflowLoader
    var diagnostics: [DataflowDiagnostic] = []

    init(file: String, directory: String, loader: DataflowLoader) {
        self.file = file
        self.directory = directory
        self.loader = loader
    }

    var sortedDiagnostics: [DataflowDiagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            let left = (lhs.element.line ?? 0, lhs.element.column ?? 0, lhs.offset)
            let right = (rhs.element.line ?? 0, rhs.element.column ?? 0, rhs.offset)
            return left < right
        }.map(\.element)
    }

    mutating func report(_ at: Node, _ scope: Scope, _ message: String) {
        let (line, column) = at.position
        diagnostics.append(DataflowDiagnostic(
            file: file, line: line, column: column, node: scope.node, context: scope.context, message: message))
    }

    // MARK: Root

    mutating func parse(_ yaml: String) -> DataflowDescriptor? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml, Resolver.basic)
        } catch let error as YamlError {
            diagnostics.append(contentsOf: YAMLSyntaxDiagnostics.diagnostics(for: error, yaml: yaml, file: file))
            return nil
        } catch {
            diagnostics.append(DataflowDiagnostic(file: file, line: nil, column: nil, message: "YAML: \(error)"))
            return nil
        }
        guard let root else {
            diagnostics.append(DataflowDiagnostic(
                file: file, line: 1, column: 1, message: "the file is empty; a dataflow needs a 'nodes' list"))
            return nil
        }
        guard case .mapping(let mapping) = root else {
            report(root, Scope(), "expected a mapping with a 'nodes' key at the top level, found \(root.kindDescription)")
            return nil
        }

        var env: [EnvVariable] = []
        var nodes: [NodeDescriptor] = []
        var sawNodes = false
        for (keyNode, value) in mapping {
            guard let key = mappingKey(keyNode, Scope()) else { continue }
            switch key {
            case "nodes":
                sawNodes = true
                nodes = parseNodes(value)
            case "env":
                env = parseEnv(value, Scope().with("env"))
            default:
                refuseKey(key, at: keyNode, Scope(), valid: Self.rootKeys, unsupported: Self.unsupportedRootKeys)
            }
        }
        if !sawNodes {
            report(root, Scope(), "missing required key 'nodes'")
        }
        return DataflowDescriptor(file: file, directory: directory, env: env, nodes: nodes)
    }

    /// A mapping key as a string; keys that are mappings or lists are reported.
    mutating func mappingKey(_ keyNode: Node, _ scope: Scope) -> String? {
        guard case .scalar(let scalar) = keyNode else {
            report(keyNode, scope, "a key must be a plain name, found \(keyNode.kindDescription)")
            return nil
        }
        return scalar.string
    }

    /// Reports a key outside `valid`; returns true when it is a dora key Apus does not support.
    @discardableResult
    mutating func refuseKey(_ key: String, at keyNode: Node, _ scope: Scope, valid: [String], unsupported: Set<String>)
        -> Bool {
        if unsupported.contains(key) {
            report(keyNode, scope, "key '\(key)' is not supported by Apus")
            return true
        }
        report(keyNode, scope, "unknown key '\(key)' (valid keys: \(valid.joined(separator: ", ")))")
        return false
    }

    // MARK: Nodes

    /// Inputs are checked against every node's outputs once all nodes are read.
    struct PendingSource {
        var text: String
        var value: Node
        var scope: Scope
        var nodeIndex: Int
        var inputIndex: Int
    }

    mutating func parseNodes(_ value: Node) -> [NodeDescriptor] {
        guard case .sequence(let sequence) = value else {
            report(value, Scope().with("key 'nodes'"), "expected a list of nodes, found \(value.kindDescription)")
            return []
        }
        if sequence.isEmpty {
            report(value, Scope().with("key 'nodes'"), "the dataflow has no nodes")
            return []
        }

        var nodes: [NodeDescriptor] = []
        var firstLineOfID: [String: Int] = [:]
        var pending: [PendingSource] = []
        for (index, item) in sequence.enumerated() {
            let label = "#\(index + 1)"
            guard case .mapping(let mapping) = item else {
                report(item, Scope(node: label), "expected a mapping with 'id' and 'path', found \(item.kindDescription)")
                continue
            }
            var node = parseNode(mapping, at: item, label: label, sources: &pending, nodeIndex: nodes.count)
            if let id = node?.id, let idNode = mapping["id"] {
                if let first = firstLineOfID[id] {
                    report(idNode, Scope(node: id).with("key 'id'"), "duplicate id (first used at line \(first))")
                    node = nil
                } else {
                    firstLineOfID[id] = idNode.position.line
                }
            }
            if let node {
                nodes.append(node)
            } else {
                pending.removeAll { $0.nodeIndex == nodes.count }
            }
        }

        let indexByID = Dictionary(nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        for source in pending {
            if let resolved = resolveSource(source, nodes: nodes, indexByID: indexByID) {
                nodes[source.nodeIndex].inputs[source.inputIndex].source = resolved
            }
        }
        return nodes
    }

    /// Parses one node. Returns nil only when it has no usable id; its other problems are
    /// reported and the node is kept, so inputs naming it are not reported a second time.
    mutating func parseNode(
        _ mapping: Node.Mapping, at item: Node, label: String, sources: inout [PendingSource], nodeIndex: Int
    ) -> NodeDescriptor? {
        var scope = Scope(node: label)
        var id: String?
        if let idNode = mapping["id"] {
            id = parseID(idNode, scope.with("key 'id'"), what: "id")
            if let id { scope = Scope(node: id) }
        } else {
            report(item, scope, "missing required key 'id'")
        }

        var node = NodeDescriptor(id: id ?? label, path: "", resolvedPath: "")
        var pathNode: Node?
        var usesUnsupportedKey = false
        var inputs: [(InputDescriptor, PendingSource?)] = []

        for (keyNode, value) in mapping {
            guard let key = mappingKey(keyNode, scope) else { continue }
            let keyScope = scope.with("key '\(key)'")
            switch key {
            case "id":
                continue
            case "name":
                node.name = text(value, keyScope)
            case "description":
                node.description = text(value, keyScope)
            case "path":
                pathNode = value
                if let path = text(value, keyScope) { node.path = path }
            case "args":
                if let args = text(value, keyScope) {
                    do {
                        node.args = try ShellWords.split(args)
                    } catch {
                        report(value, keyScope, "\(error.message) in '\(args)'")
                    }
                }
            case "env":
                node.env = parseEnv(value, scope.with("env"))
            case "build":
                node.build = text(value, keyScope)
            case "inputs":
                inputs = parseInputs(value, scope, nodeIndex: nodeIndex)
            case "outputs":
                node.outputs = parseOutputs(value, keyScope)
            case "restart_policy":
                if let policy = choice(value, keyScope, RestartPolicy.self) { node.restartPolicy = policy }
            case "max_restarts":
                if let count = integer(value, keyScope, minimum: 0) { node.maxRestarts = Int(count) }
            case "restart_delay":
                node.restartDelay = duration(value, keyScope)
            case "max_restart_delay":
                node.maxRestartDelay = duration(value, keyScope)
            case "send_stdout_as":
                node.sendStdoutAs = parseID(value, keyScope, what: "output id")
            default:
                if refuseKey(key, at: keyNode, scope, valid: Self.nodeKeys, unsupported: Self.unsupportedNodeKeys) {
                    usesUnsupportedKey = true
                }
            }
        }

        if let delay = node.restartDelay, let maximum = node.maxRestartDelay, maximum < delay,
           let value = mapping["max_restart_delay"] {
            report(value, scope.with("key 'max_restart_delay'"),
                   "\(formatNumber(maximum)) s is shorter than restart_delay (\(formatNumber(delay)) s)")
        }

        if let output = node.sendStdoutAs, !node.outputs.contains(output), let value = mapping["send_stdout_as"] {
            report(value, scope.with("key 'send_stdout_as'"),
                   "'\(output)' is not a declared output (\(listing("outputs", node.outputs)))")
        }

        if pathNode == nil {
            // An operator node has no path; saying so again would only add noise.
            if !usesUnsupportedKey { report(item, scope, "missing required key 'path'") }
        } else if let pathNode, !node.path.isEmpty {
            node.resolvedPath = resolvePath(node, at: pathNode, scope.with("key 'path'"))
        } else if let pathNode {
            report(pathNode, scope.with("key 'path'"), "must not be empty")
        }

        node.inputs = inputs.map(\.0)
        for (inputIndex, input) in inputs.enumerated() {
            if var source = input.1 {
                source.inputIndex = inputIndex
                sources.append(source)
            }
        }
        return id == nil ? nil : node
    }

    /// An id of a node, input or output: `[A-Za-z0-9_.-]`, not starting with `.`.
    mutating func parseID(_ value: Node, _ scope: Scope, what: String) -> String? {
        guard let id = text(value, scope) else { return nil }
        if id.isEmpty {
            report(value, scope, "\(what) must not be empty")
            return nil
        }
        guard id.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || "_.-".contains($0) }) else {
            report(value, scope, "\(what) '\(id)' may contain only letters, digits, '_', '.' and '-'")
            return nil
        }
        if id.hasPrefix(".") {
            report(value, scope, "\(what) '\(id)' must not start with '.'")
            return nil
        }
        if what == "id", id == "apus" || id == "dora" {
            report(value, scope, "id '\(id)' is reserved for built-in sources such as \(id)/timer/...")
            return nil
        }
        return id
    }

    mutating func resolvePath(_ node: NodeDescriptor, at value: Node, _ scope: Scope) -> String {
        let path = node.path
        let absolute = path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
        // A node with a build step may produce its executable only when it is built.
        guard loader.checksPaths, node.build == nil else { return absolute }

        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                report(value, scope, "'\(path)' is a folder, not a program (\(absolute))")
            } else if !node.isPython, !FileManager.default.isExecutableFile(atPath: absolute) {
                report(value, scope, "'\(path)' is not executable (\(absolute); try chmod +x)")
            }
            return absolute
        }
        if !path.contains("/"), let found = searchPATH(path, in: loader.environment["PATH"] ?? "") {
            return found
        }
        let onPath = path.contains("/") ? "" : " nor on PATH"
        report(value, scope, "'\(path)' not found (looked for \(absolute)\(onPath))")
        return absolute
    }


    // MARK: Inputs and outputs

    mutating func parseOutputs(_ value: Node, _ scope: Scope) -> [String] {
        guard case .sequence(let sequence) = value else {
            report(value, scope, "expected a list of output ids, found \(value.kindDescription)")
            return []
        }
        var outputs: [String] = []
        for item in sequence {
            guard let output = parseID(item, scope, what: "output id") else { continue }
            if outputs.contains(output) {
                report(item, scope, "output '\(output)' is declared twice")
            } else {
                outputs.append(output)
            }
        }
        return outputs
    }

    mutating func parseInputs(_ value: Node, _ scope: Scope, nodeIndex: Int) -> [(InputDescriptor, PendingSource?)] {
        guard case .mapping(let mapping) = value else {
            report(value, scope.with("key 'inputs'"),
                   "expected a mapping of input ids to sources, found \(value.kindDescription)")
            return []
        }
        var inputs: [(InputDescriptor, PendingSource?)] = []
        for (keyNode, inputValue) in mapping {
            guard let id = parseID(keyNode, scope.with("key 'inputs'"), what: "input id") else { continue }
            let inputScope = scope.with("input '\(id)'")
            var input = InputDescriptor(id: id, source: .output(node: "", output: ""))
            let sourceNode: Node?
            var timeoutKey: Node?
            switch inputValue {
            case .scalar:
                sourceNode = inputValue
            case .mapping(let long):
                sourceNode = long["source"]
                if sourceNode == nil {
                    report(inputValue, inputScope, "missing required key 'source'")
                }
                for (optionKey, optionValue) in long {
                    guard let option = mappingKey(optionKey, inputScope) else { continue }
                    let optionScope = inputScope.with("key '\(option)'")
                    switch option {
                    case "source":
                        continue
                    case "queue_size":
                        if let size = integer(optionValue, optionScope, minimum: 1, maximum: Int64(InputDescriptor.maxQueueSize)) {
                            input.queueSize = Int(size)
                        }
                    case "queue_policy":
                        if let policy = choice(optionValue, optionScope, QueuePolicy.self) { input.queuePolicy = policy }
                    case "input_timeout":
                        input.inputTimeout = duration(optionValue, optionScope)
                        timeoutKey = optionKey
                    default:
                        report(optionKey, inputScope,
                               "unknown key '\(option)' (valid keys: \(Self.inputKeys.joined(separator: ", ")))")
                    }
                }
            default:
                report(inputValue, inputScope,
                       "expected a source 'NODE/OUTPUT' or a mapping with 'source', found \(inputValue.kindDescription)")
                sourceNode = nil
            }
            guard let sourceNode, let sourceText = text(sourceNode, inputScope.with("key 'source'")) else {
                continue
            }
            if let timeoutKey, sourceText.hasPrefix("apus/timer/") || sourceText.hasPrefix("dora/timer/") {
                report(timeoutKey, inputScope, "key 'input_timeout' applies to inputs fed by a node; a timer input never goes quiet")
                input.inputTimeout = nil
            }
            let pending = PendingSource(text: sourceText, value: sourceNode, scope: inputScope, nodeIndex: nodeIndex, inputIndex: 0)
            inputs.append((input, pending))
        }
        return inputs
    }

    /// Resolves `NODE/OUTPUT` or a timer against the nodes that were read.
    mutating func resolveSource(_ pending: PendingSource, nodes: [NodeDescriptor], indexByID: [String: Int]) -> InputSource? {
        let text = pending.text
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let shapeHint = "write NODE/OUTPUT or apus/timer/<unit>/<n>"
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            report(pending.value, pending.scope, "source '\(text)' is not of the form NODE/OUTPUT (\(shapeHint))")
            return nil
        }
        let nodeID = String(parts[0])
        if nodeID == "apus" || nodeID == "dora" {
            let timerParts = parts[1].split(separator: "/", omittingEmptySubsequences: false)
            guard timerParts.count == 3, timerParts[0] == "timer" else {
                report(pending.value, pending.scope,
                       "source '\(text)' is not a built-in source (timers are \(nodeID)/timer/<unit>/<n>)")
                return nil
            }
            switch TimerSpec.parse(unit: timerParts[1], value: timerParts[2]) {
            case .success(let timer):
                return .timer(timer)
            case .failure(let error):
                report(pending.value, pending.scope, "timer '\(text)': \(error.message)")
                return nil
            }
        }
        let output = String(parts[1])
        guard let producer = indexByID[nodeID].map({ nodes[$0] }) else {
            report(pending.value, pending.scope,
                   "source '\(text)' names no node (\(listing("nodes", nodes.map(\.id))))")
            return nil
        }
        guard producer.outputs.contains(output) else {
            let declared = producer.outputs.isEmpty ? "it declares no outputs" : listing("outputs", producer.outputs)
            report(pending.value, pending.scope, "source '\(text)': node '\(nodeID)' has no output '\(output)' (\(declared))")
            return nil
        }
        return .output(node: nodeID, output: output)
    }

    /// `nodes: a, b, c` with long lists shortened.
    func listing(_ what: String, _ names: [String]) -> String {
        let limit = 12
        if names.count <= limit { return "\(what): \(names.joined(separator: ", "))" }
        return "\(what): \(names.prefix(limit).joined(separator: ", ")), … \(names.count - limit) more"
    }

    // MARK: Env

    mutating func parseEnv(_ value: Node, _ scope: Scope) -> [EnvVariable] {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "expected a mapping of variable names to values, found \(value.kindDescription)")
            return []
        }
        var variables: [EnvVariable] = []
        for (keyNode, item) in mapping {
            guard let name = mappingKey(keyNode, scope) else { continue }
            guard EnvExpansion.isVariableName(Substring(name)) else {
                report(keyNode, scope, "'\(name)' is not a valid variable name (letters, digits and '_', not starting with a digit)")
                continue
            }
            let itemScope = scope.with("'\(name)'")
            guard case .scalar(let scalar) = item else {
                report(item, itemScope, "expected a bool, number or string, found \(item.kindDescription)")
                continue
            }
            switch ScalarValue(scalar) {
            case .null:
                report(item, itemScope, "expected a bool, number or string, found nothing")
            case .bool(let flag):
                variables.append(EnvVariable(name: name, value: .bool(flag)))
            case .int(let number):
                variables.append(EnvVariable(name: name, value: .int(number)))
            case .float(let number):
                variables.append(EnvVariable(name: name, value: .float(number)))
            case .string(let text):
                do {
                    let expanded = try EnvExpansion.expand(text, environment: loader.environment)
                    variables.append(EnvVariable(name: name, value: .string(expanded)))
                } catch {
                    report(item, itemScope, error.message)
                }
            }
        }
        return variables
    }

    // MARK: Typed values

    /// Any non-null scalar as the text written; a mapping, list or nothing is reported.
    mutating func text(_ value: Node, _ scope: Scope) -> String? {
        guard case .scalar(let scalar) = value, ScalarValue(scalar) != .null else {
            report(value, scope, "expected a string, found \(value.kindDescription)")
            return nil
        }
        return scalar.string
    }

    mutating func integer(_ value: Node, _ scope: Scope, minimum: Int64, maximum: Int64 = .max) -> Int64? {
        guard case .scalar(let scalar) = value, case .int(let number) = ScalarValue(scalar) else {
            report(value, scope, "expected an integer, found \(value.kindDescription)")
            return nil
        }
        guard number >= minimum else {
            report(value, scope, "must be at least \(minimum), found \(number)")
            return nil
        }
        guard number <= maximum else {
            report(value, scope, "must be at most \(maximum), found \(number)")
            return nil
        }
        return number
    }

    /// A duration in seconds: a finite number greater than zero.
    mutating func duration(_ value: Node, _ scope: Scope) -> Double? {
        let seconds: Double
        switch value {
        case .scalar(let scalar):
            switch ScalarValue(scalar) {
            case .int(let number): seconds = Double(number)
            case .float(let number): seconds = number
            default:
                report(value, scope, "expected a number of seconds, found \(value.kindDescription)")
                return nil
            }
        default:
            report(value, scope, "expected a number of seconds, found \(value.kindDescription)")
            return nil
        }
        guard seconds.isFinite, seconds > 0 else {
            report(value, scope, "must be a finite number of seconds greater than 0, found \(value.scalar?.string ?? "")")
            return nil
        }
        return seconds
    }

    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ value: Node, _ scope: Scope, _: Choice.Type
    ) -> Choice? where Choice.RawValue == String {
        let values = Choice.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .scalar(let scalar) = value, case .string(let text) = ScalarValue(scalar) else {
            report(value, scope, "expected one of \(values), found \(value.kindDescription)")
            return nil
        }
        guard let choice = Choice(rawValue: text) else {
            report(value, scope, "unknown value '\(text)' (expected one of \(values))")
            return nil
        }
        return choice
    }
}

/// The first executable `command` in the colon-separated folders of `path` (a PATH value).
public func searchPATH(_ command: String, in path: String) -> String? {
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(command)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
