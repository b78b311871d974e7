// Nodes: their keys, ids and programs.
import Foundation
import Yams

extension DataflowParser {
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
        guard
            withinLimit(sequence.count, DataflowDescriptor.Limits.nodes, "nodes", of: "a dataflow", at: value, Scope().with("key 'nodes'"))
        else {
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
        let outputs = nodes.map { Set($0.outputs) }
        for source in pending {
            if let resolved = resolveSource(source, nodes: nodes, indexByID: indexByID, outputs: outputs) {
                nodes[source.nodeIndex].inputs[source.inputIndex].source = resolved
            }
        }
        return nodes
    }

    /// Parses a node file (one node, in the shape of a dataflow's node) for a node that joins the
    /// running dataflow whose nodes are `running`: its id must be new, and its inputs may name
    /// their outputs (or its own).
    mutating func parseJoining(_ yaml: String, running: [NodeDescriptor]) -> NodeDescriptor? {
        guard
            let (root, mapping) = composeMapping(
                yaml, empty: "a node file needs 'id' and 'path'", wanted: "one node: a mapping with 'id' and 'path'")
        else { return nil }
        var pending: [PendingSource] = []
        guard var node = parseNode(mapping, at: root, label: "#1", sources: &pending, nodeIndex: running.count) else { return nil }
        if let idNode = mapping["id"], running.contains(where: { $0.id == node.id }) {
            report(idNode, Scope(node: node.id).with("key 'id'"), "duplicate id: the running dataflow already has a node '\(node.id)'")
            return nil
        }
        let nodes = running + [node]
        let indexByID = Dictionary(nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        for source in pending {
            if let resolved = resolveSource(source, nodes: nodes, indexByID: indexByID, outputs: nodes.map { Set($0.outputs) }) {
                node.inputs[source.inputIndex].source = resolved
            }
        }
        return node
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
        var operatorKey: String?
        var inputs: [(InputDescriptor, PendingSource?)] = []
        var annotations = PortAnnotations()

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
            case "restart_window":
                node.restartWindow = duration(value, keyScope)
            case "health_check_timeout":
                node.healthCheckTimeout = duration(value, keyScope)
            case "cpu_affinity":
                node.cpuAffinity = parseCPUs(value, keyScope)
            case "wait":
                node.wait = choice(value, keyScope, WaitMode.self)
            case "deploy", "_unstable_deploy":
                if let deployment = parseDeploy(value, keyScope) { node.deployment = deployment }
            case "send_logs_as":
                node.sendLogsAs = parseID(value, keyScope, what: "output id")
            case "min_log_level":
                node.minLogLevel = choice(value, keyScope, LogLevel.self)
            case "max_log_size":
                node.maxLogSize = logSize(value, keyScope)
            case "max_rotated_files":
                if let count = integer(value, keyScope, minimum: 1, maximum: 1000) { node.maxRotatedFiles = Int(count) }
            case _ where PortAnnotations.keys.contains(key):
                parseAnnotation(key, value, keyScope, into: &annotations)
            case "operators", "operator":
                if let other = operatorKey {
                    report(keyNode, scope, "key '\(key)' and key '\(other)' do not go together; use one")
                    continue
                }
                operatorKey = key
                inputs += parseOperators(value, single: key == "operator", into: &node, scope: scope, nodeIndex: nodeIndex)
            default:
                if refuseKey(key, at: keyNode, scope, valid: Self.nodeKeys, unsupported: Self.unsupportedNodeKeys) {
                    usesUnsupportedKey = true
                }
            }
        }

        if let delay = node.restartDelay, let maximum = node.maxRestartDelay, maximum < delay,
            let value = mapping["max_restart_delay"]
        {
            report(
                value, scope.with("key 'max_restart_delay'"),
                "\(formatNumber(maximum)) s is shorter than restart_delay (\(formatNumber(delay)) s)")
        }

        for (key, output) in [("send_stdout_as", node.sendStdoutAs), ("send_logs_as", node.sendLogsAs)] {
            if let output, !node.outputs.contains(output), let value = mapping[key] {
                report(value, scope.with("key '\(key)'"), "'\(output)' is not a declared output (\(listing("outputs", node.outputs)))")
            }
        }
        if let output = node.sendLogsAs, output == node.sendStdoutAs, let value = mapping["send_logs_as"] {
            report(value, scope.with("key 'send_logs_as'"), "'\(output)' already carries its stdout (send_stdout_as): name another output")
        }
        if node.maxLogSize == nil, let value = mapping["max_rotated_files"] {
            report(value, scope.with("key 'max_rotated_files'"), "has no effect without max_log_size (the size at which the log rotates)")
        }

        if operatorKey != nil {
            for key in Self.programOnlyKeys {
                guard let (keyNode, _) = mapping.first(where: { $0.key.string == key }) else { continue }
                report(
                    keyNode, scope,
                    "key '\(key)' does not go with '\(operatorKey!)': a runtime node's inputs and outputs are its operators'")
            }
        } else if pathNode == nil {
            if !usesUnsupportedKey { report(item, scope, "missing required key 'path'") }
        } else if let pathNode, !node.path.isEmpty {
            node.resolvedPath = resolvePath(node, at: pathNode, scope.with("key 'path'"))
        } else if let pathNode {
            report(pathNode, scope.with("key 'path'"), "must not be empty")
        }

        node.inputs = inputs.map(\.0)
        node.outputTypes += annotations.outputTypes  // after its operators' own, if it has any
        node.inputTypes += annotations.inputTypes
        node.outputMetadata.merge(annotations.requiredMetadata(of: node.outputs)) { $0 + $1 }
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
        guard id.allSatisfy(\.isIDCharacter) else {
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
        switch loader.lookUpProgram(node.path, directory: directory, isPython: node.isPython, hasBuild: node.build != nil) {
        case .found(let absolute):
            return absolute
        case .problem(let message, let absolute):
            report(value, scope, message)
            return absolute
        }
    }
}
