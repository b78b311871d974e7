// Inputs and outputs, and the sources that wire them.
import Foundation
import Yams

extension DataflowParser {
    mutating func parseOutputs(_ value: Node, _ scope: Scope) -> [String] {
        guard case .sequence(let sequence) = value else {
            report(value, scope, "expected a list of output ids, found \(value.kindDescription)")
            return []
        }
        guard withinLimit(sequence.count, DataflowDescriptor.Limits.outputs, "outputs", of: "a node", at: value, scope) else { return [] }
        var outputs: [String] = []
        var declared: Set<String> = []
        for item in sequence {
            guard let output = parseID(item, scope, what: "output id") else { continue }
            if declared.insert(output).inserted {
                outputs.append(output)
            } else {
                report(item, scope, "output '\(output)' is declared twice")
            }
        }
        return outputs
    }

    mutating func parseInputs(_ value: Node, _ scope: Scope, nodeIndex: Int) -> [(InputDescriptor, PendingSource?)] {
        guard case .mapping(let mapping) = value else {
            report(
                value, scope.with("key 'inputs'"),
                "expected a mapping of input ids to sources, found \(value.kindDescription)")
            return []
        }
        guard withinLimit(mapping.count, DataflowDescriptor.Limits.inputs, "inputs", of: "a node", at: value, scope.with("key 'inputs'"))
        else {
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
                        report(
                            optionKey, inputScope,
                            "unknown key '\(option)' (valid keys: \(Self.inputKeys.joined(separator: ", ")))")
                    }
                }
            default:
                report(
                    inputValue, inputScope,
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
    mutating func resolveSource(
        _ pending: PendingSource, nodes: [NodeDescriptor], indexByID: [String: Int], outputs: [Set<String>]
    ) -> InputSource? {
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
                report(
                    pending.value, pending.scope,
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
        guard let producerIndex = indexByID[nodeID] else {
            report(
                pending.value, pending.scope,
                "source '\(text)' names no node (\(listing("nodes", nodes.map(\.id))))")
            return nil
        }
        let producer = nodes[producerIndex]
        guard outputs[producerIndex].contains(output) else {
            let declared = producer.outputs.isEmpty ? "it declares no outputs" : listing("outputs", producer.outputs)
            report(pending.value, pending.scope, "source '\(text)': node '\(nodeID)' has no output '\(output)' (\(declared))")
            return nil
        }
        return .output(node: nodeID, output: output)
    }

    /// `nodes: a, b, c` with long lists shortened.
    func listing(_ what: String, _ names: [String]) -> String {
        let limit = 12
        if names.isEmpty { return "it has no \(what)" }
        if names.count <= limit { return "\(what): \(names.joined(separator: ", "))" }
        return "\(what): \(names.prefix(limit).joined(separator: ", ")), … \(names.count - limit) more"
    }
}
