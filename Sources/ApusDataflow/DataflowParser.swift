// The dataflow file's grammar: one pass over the composed YAML tree, with no file-system calls
// (a node's program is looked up through its loader).
import Foundation
import Yams

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
    static let rootKeys = ["nodes", "env", "strict_types", "type_rules", "health_check_interval", "exit_when_nodes_finish"]
    static let nodeKeys = [
        "id", "name", "description", "path", "args", "env", "build", "inputs", "outputs",
        "restart_policy", "max_restarts", "restart_delay", "max_restart_delay", "send_stdout_as", "operators", "operator",
        "output_types", "input_types", "output_metadata", "pattern", "send_logs_as", "min_log_level", "max_log_size",
        "max_rotated_files", "restart_window", "cpu_affinity", "health_check_timeout", "wait", "deploy", "_unstable_deploy",
    ]
    static let inputKeys = ["source", "queue_size", "queue_policy", "input_timeout"]
    /// dora keys refused by name, with why, so a dora user learns it is a missing feature and not a typo.
    static let unsupportedRootKeys: [String: String] = [
        "communication": "Apus connects nodes over shared memory, with no transport to choose",
        "deploy": rootDeploy, "_unstable_deploy": rootDeploy,
        "_unstable_debug": debugOptions, "debug": debugOptions,
    ]
    static let unsupportedNodeKeys: [String: String] = [
        "custom": "dora 0.x's `custom` is gone from dora 1.x: write path, args, inputs and outputs on the node",
        "git": fromGit, "branch": fromGit, "tag": fromGit, "rev": fromGit,
        "module": "module files are not supported: write the module's nodes into the dataflow",
        "ros2": "dora's ROS 2 bridge is not part of Apus: a node can use rclpy (or rclcpp) itself",
    ]
    static let rootDeploy = "a dataflow-wide deploy is not supported: give each node that runs elsewhere its own deploy: {machine: NAME}"
    static let debugOptions = "dora's debug options switch its Zenoh publishing, which Apus does not use"
    static let fromGit = "Apus runs nodes from local paths: clone the repository (a `build:` step can) and name it in `path`"

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
        diagnostics.append(
            DataflowDiagnostic(
                file: file, line: line, column: column, node: scope.node, context: scope.context, message: message))
    }

    // MARK: Root

    /// The file's top-level mapping, or nil with the problem reported: `empty` says what an empty
    /// file lacks, `wanted` what the top level should be.
    mutating func composeMapping(_ yaml: String, empty: String, wanted: String) -> (Node, Node.Mapping)? {
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
            diagnostics.append(DataflowDiagnostic(file: file, line: 1, column: 1, message: "the file is empty; \(empty)"))
            return nil
        }
        guard case .mapping(let mapping) = root else {
            report(root, Scope(), "expected \(wanted) at the top level, found \(root.kindDescription)")
            return nil
        }
        return (root, mapping)
    }

    mutating func parse(_ yaml: String) -> DataflowDescriptor? {
        guard
            let (root, mapping) = composeMapping(
                yaml, empty: "a dataflow needs a 'nodes' list", wanted: "a mapping with a 'nodes' key")
        else { return nil }

        var env: [EnvVariable] = []
        var nodes: [NodeDescriptor] = []
        var sawNodes = false
        var strictTypes = false
        var typeRules: Set<[String]> = []
        var healthCheckInterval: Double?
        var exitWhenNodesFinish: Bool?
        for (keyNode, value) in mapping {
            guard let key = mappingKey(keyNode, Scope()) else { continue }
            switch key {
            case "nodes":
                sawNodes = true
                nodes = parseNodes(value)
            case "env":
                env = parseEnv(value, Scope().with("env"))
            case "strict_types":
                strictTypes = boolean(value, Scope().with("key 'strict_types'")) ?? false
            case "type_rules":
                typeRules = parseTypeRules(value, Scope().with("key 'type_rules'"))
            case "exit_when_nodes_finish":
                exitWhenNodesFinish = boolean(value, Scope().with("key 'exit_when_nodes_finish'"))
            case "health_check_interval":
                healthCheckInterval = duration(value, Scope().with("key 'health_check_interval'"))
            default:
                refuseKey(key, at: keyNode, Scope(), valid: Self.rootKeys, unsupported: Self.unsupportedRootKeys)
            }
        }
        if !sawNodes {
            report(root, Scope(), "missing required key 'nodes'")
        }
        var descriptor = DataflowDescriptor(file: file, directory: directory, env: env, nodes: nodes)
        if let healthCheckInterval { descriptor.healthCheckInterval = healthCheckInterval }
        if let exitWhenNodesFinish { descriptor.exitWhenNodesFinish = exitWhenNodesFinish }
        if healthCheckInterval != nil, !nodes.contains(where: { $0.healthCheckTimeout != nil }),
            let (keyNode, _) = mapping.first(where: { $0.key.string == "health_check_interval" })
        {
            report(keyNode, Scope(), "health_check_interval has no effect: no node has a health_check_timeout")
        }
        if nodes.contains(where: { !$0.outputTypes.isEmpty || !$0.inputTypes.isEmpty }) {
            var (library, problems) = loader.typeLibrary(directory: directory)
            library.rules = typeRules
            let warnings =
                problems.map { DataflowDiagnostic(file: file, line: nil, column: nil, message: $0) }
                + typeWarnings(nodes, library: library)
            if strictTypes { diagnostics += warnings } else { descriptor.warnings = warnings }
        }
        return descriptor
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
    mutating func refuseKey(_ key: String, at keyNode: Node, _ scope: Scope, valid: [String], unsupported: [String: String])
        -> Bool
    {
        if let reason = unsupported[key] {
            report(keyNode, scope, "key '\(key)' is not supported by Apus: \(reason)")
            return true
        }
        report(keyNode, scope, "unknown key '\(key)' (valid keys: \(valid.joined(separator: ", ")))")
        return false
    }
}
