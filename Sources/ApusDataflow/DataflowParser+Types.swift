// `output_types`, `input_types`, `output_metadata` and `pattern` on nodes and operators;
// `strict_types` and `type_rules` at the root; and the check of every edge's declared types.
import Foundation
import Yams

/// What `output_types`, `input_types`, `output_metadata` and `pattern` say of a node's or an
/// operator's ports.
struct PortAnnotations {
    static let keys: Set = ["output_types", "input_types", "output_metadata", "pattern"]

    var outputTypes: [PortType] = []
    var inputTypes: [PortType] = []
    var outputMetadata: [String: [String]] = [:]
    var patternKeys: [String] = []

    /// The metadata keys each of `outputs` requires: its own and its pattern's.
    func requiredMetadata(of outputs: [String]) -> [String: [String]] {
        var required = outputMetadata
        if !patternKeys.isEmpty { for output in outputs { required[output, default: []] += patternKeys } }
        return required
    }
}

extension DataflowParser {
    /// Metadata keys each message of an output must carry, per communication pattern.
    static let patterns: [String: [String]] = [
        "service-server": ["request_id"], "service-client": ["request_id"], "action-server": ["goal_id", "goal_status"],
        "action-client": ["goal_id"],
    ]

    /// The four keys of a node or operator that annotate its ports, parsed into `annotations`.
    mutating func parseAnnotation(_ key: String, _ value: Node, _ scope: Scope, into annotations: inout PortAnnotations) {
        switch key {
        case "output_types": annotations.outputTypes += parseTypeMap(value, scope)
        case "input_types": annotations.inputTypes += parseTypeMap(value, scope)
        case "output_metadata": annotations.outputMetadata.merge(parseOutputMetadata(value, scope)) { $0 + $1 }
        default: annotations.patternKeys = parsePattern(value, scope) ?? []
        }
    }

    /// `output_types: {port: URN}` or `input_types`.
    mutating func parseTypeMap(_ value: Node, _ scope: Scope) -> [PortType] {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "expected a mapping of ids to type URNs (e.g. std/core/v1/Float64), found \(value.kindDescription)")
            return []
        }
        var types: [PortType] = []
        for (keyNode, item) in mapping {
            guard let port = mappingKey(keyNode, scope), let text = text(item, scope.with("'\(port)'")) else { continue }
            guard let urn = TypeURN(text) else {
                report(
                    item, scope.with("'\(port)'"), "'\(text)' is not a type URN (std/<category>/v<N>/<Name>, optionally [key=value,...])")
                continue
            }
            let (line, column) = item.position
            types.append(PortType(port: port, type: urn, line: line, column: column))
        }
        return types
    }

    /// `output_metadata: {port: [key, ...]}`.
    mutating func parseOutputMetadata(_ value: Node, _ scope: Scope) -> [String: [String]] {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "expected a mapping of output ids to lists of metadata keys, found \(value.kindDescription)")
            return [:]
        }
        var required: [String: [String]] = [:]
        for (keyNode, item) in mapping {
            guard let port = mappingKey(keyNode, scope) else { continue }
            guard case .sequence(let keys) = item else {
                report(item, scope.with("'\(port)'"), "expected a list of metadata keys, found \(item.kindDescription)")
                continue
            }
            required[port] = keys.compactMap { text($0, scope.with("'\(port)'")) }
        }
        return required
    }

    /// `pattern: service-server` and the like: the metadata keys it requires on every output.
    mutating func parsePattern(_ value: Node, _ scope: Scope) -> [String]? {
        guard let name = text(value, scope) else { return nil }
        guard let keys = Self.patterns[name] else {
            report(value, scope, "'\(name)' is not a pattern (one of \(Self.patterns.keys.sorted().joined(separator: ", ")))")
            return nil
        }
        return keys
    }

    /// `type_rules: [{from: URN, to: URN}, ...]`.
    mutating func parseTypeRules(_ value: Node, _ scope: Scope) -> Set<[String]> {
        guard case .sequence(let items) = value else {
            report(value, scope, "expected a list of {from: TYPE, to: TYPE}, found \(value.kindDescription)")
            return []
        }
        var rules: Set<[String]> = []
        for item in items {
            guard case .mapping(let mapping) = item, mapping.count == 2, let from = mapping["from"], let to = mapping["to"],
                let source = text(from, scope.with("key 'from'")), let target = text(to, scope.with("key 'to'"))
            else {
                report(item, scope, "expected {from: TYPE, to: TYPE}")
                continue
            }
            rules.insert([source, target])
        }
        return rules
    }

    /// Checks every declared type: ports that exist, types the library knows, and each edge whose
    /// two ends are typed (a timer is std/core/v1/UInt64). Returns the problems, as warnings.
    func typeWarnings(_ nodes: [NodeDescriptor], library: TypeLibrary) -> [DataflowDiagnostic] {
        var warnings: [DataflowDiagnostic] = []
        func warn(_ node: NodeDescriptor, _ port: PortType, _ message: String) {
            warnings.append(DataflowDiagnostic(file: file, line: port.line, column: port.column, node: node.id, message: message))
        }
        var declared: [String: (node: NodeDescriptor, port: PortType)] = [:]
        for node in nodes {
            for port in node.outputTypes {
                if !node.outputs.contains(port.port) {
                    warn(node, port, "output_types: '\(port.port)' is not one of its outputs (\(node.outputs.joined(separator: ", ")))")
                } else if let problem = library.problem(with: port.type) {
                    warn(node, port, "output '\(port.port)': \(problem)")
                } else {
                    declared["\(node.id)/\(port.port)"] = (node, port)
                }
            }
        }
        for node in nodes {
            for port in node.inputTypes {
                guard let input = node.inputs.first(where: { $0.id == port.port }) else {
                    warn(
                        node, port,
                        "input_types: '\(port.port)' is not one of its inputs (\(node.inputs.map(\.id).joined(separator: ", ")))")
                    continue
                }
                if let problem = library.problem(with: port.type) {
                    warn(node, port, "input '\(port.port)': \(problem)")
                    continue
                }
                let sent: TypeURN
                let origin: String
                switch input.source {
                case .timer(let timer):
                    sent = TypeURN(TypeLibrary.timer)!
                    origin = "the timer \(timer)"
                case .output(let producer, let output):
                    guard let (_, declaredPort) = declared["\(producer)/\(output)"] else { continue }
                    sent = declaredPort.type
                    origin = "\(producer)/\(output) (declared at \(file):\(declaredPort.line ?? 0):\(declaredPort.column ?? 0))"
                }
                if !library.accepts(port.type, from: sent) {
                    warn(node, port, "type mismatch on input '\(port.port)': it expects \(port.type), but \(origin) sends \(sent)")
                }
            }
        }
        return warnings
    }
}
