// Operators: the plugins a runtime node hosts, their keys, kinds and libraries.
import Foundation
import Yams

extension DataflowParser {
    static let operatorKeys = [
        "id", "name", "description", "build", "shared-library", "wasm", "limits", "restart_policy", "max_restarts", "inputs", "outputs",
    ]
    static let limitKeys = ["fuel_per_event", "memory"]
    /// Kinds of operator dora has that Apus does not run (yet): refused by name.
    static let unsupportedOperatorKinds: Set = ["python"]
    /// Node keys that make no sense next to `operators`: a runtime node runs its operators.
    static let programOnlyKeys = ["path", "args", "inputs", "outputs", "send_stdout_as"]

    /// Parses `operators:` (a list) or `operator:` (one mapping) into `node`: its operators, and
    /// its inputs and outputs, which are theirs, qualified.
    mutating func parseOperators(
        _ value: Node, single: Bool, into node: inout NodeDescriptor, scope: Scope, nodeIndex: Int
    ) -> [(InputDescriptor, PendingSource?)] {
        let keyScope = scope.with("key '\(single ? "operator" : "operators")'")
        let items: [Node]
        switch (single, value) {
        case (true, .mapping):
            items = [value]
        case (false, .sequence(let sequence)):
            items = Array(sequence)
        default:
            report(value, keyScope, "expected \(single ? "a mapping" : "a list of operators"), found \(value.kindDescription)")
            return []
        }
        if items.isEmpty { report(value, keyScope, "the node has no operators") }
        node.isSingleOperator = single
        var inputs: [(InputDescriptor, PendingSource?)] = []
        var firstLine: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            guard case .mapping(let mapping) = item else {
                report(item, keyScope, "expected a mapping with 'id' and 'shared-library', found \(item.kindDescription)")
                continue
            }
            guard var parsed = parseOperator(mapping, at: item, label: "#\(index + 1)", scope: scope, nodeIndex: nodeIndex)
            else { continue }
            if let line = firstLine[parsed.operator.id] {
                report(
                    mapping["id"] ?? item, scope.with("operator '\(parsed.operator.id)'"),
                    "duplicate operator id (first used at line \(line))")
                continue
            }
            firstLine[parsed.operator.id] = (mapping["id"] ?? item).position.line
            node.operators.append(parsed.operator)
            node.outputs += parsed.operator.outputs.map { node.qualified($0, of: parsed.operator.id) }
            for position in parsed.inputs.indices {
                parsed.inputs[position].0.id = node.qualified(parsed.inputs[position].0.id, of: parsed.operator.id)
            }
            inputs += parsed.inputs
        }
        return inputs
    }

    /// One operator; nil when it has no usable id.
    mutating func parseOperator(
        _ mapping: Node.Mapping, at item: Node, label: String, scope nodeScope: Scope, nodeIndex: Int
    ) -> (operator: OperatorDescriptor, inputs: [(InputDescriptor, PendingSource?)])? {
        var scope = nodeScope.with("operator \(label)")
        var id: String?
        if let idNode = mapping["id"] {
            id = parseID(idNode, scope.with("key 'id'"), what: "operator id")
            if let id { scope = nodeScope.with("operator '\(id)'") }
        } else {
            report(item, scope, "missing required key 'id'")
        }
        var described = OperatorDescriptor(id: id ?? label, kind: .sharedLibrary(path: "", resolvedPath: ""))
        var inputs: [(InputDescriptor, PendingSource?)] = []
        var kinds: [(key: String, value: Node)] = []
        var limitsNode: Node?
        var restartNodes: [Node] = []
        for (keyNode, value) in mapping {
            guard let key = mappingKey(keyNode, scope) else { continue }
            let keyScope = scope.with("key '\(key)'")
            switch key {
            case "id":
                continue
            case "name":
                described.name = text(value, keyScope)
            case "description":
                described.description = text(value, keyScope)
            case "build":
                described.build = text(value, keyScope)
            case "inputs":
                inputs = parseInputs(value, scope, nodeIndex: nodeIndex)
                described.inputs = inputs.map(\.0.id)
            case "outputs":
                described.outputs = parseOutputs(value, keyScope)
            case "shared-library", "wasm":
                kinds.append((key, value))
            case "limits":
                limitsNode = value
                described.limits = parseLimits(value, keyScope)
            case "restart_policy":
                restartNodes.append(value)
                if let policy = choice(value, keyScope, RestartPolicy.self) { described.restartPolicy = policy }
            case "max_restarts":
                restartNodes.append(value)
                if let count = integer(value, keyScope, minimum: 0) { described.maxRestarts = Int(count) }
            default:
                if Self.unsupportedOperatorKinds.contains(key) {
                    report(keyNode, scope, "operator kind '\(key)' is not supported by Apus yet (use 'shared-library' or 'wasm')")
                    kinds.append((key, value))
                } else {
                    report(keyNode, scope, "unknown key '\(key)' (valid keys: \(Self.operatorKeys.joined(separator: ", ")))")
                }
            }
        }
        switch kinds.count {
        case 0:
            report(item, scope, "missing its kind: one of 'shared-library', 'python' or 'wasm'")
        case 1:
            let kindScope = scope.with("key '\(kinds[0].key)'")
            if kinds[0].key == "shared-library", let path = text(kinds[0].value, kindScope) {
                described.kind = sharedLibrary(path, at: kinds[0].value, kindScope, hasBuild: described.build != nil)
            } else if kinds[0].key == "wasm", let path = text(kinds[0].value, kindScope) {
                described.kind = wasmModule(path, at: kinds[0].value, kindScope, hasBuild: described.build != nil)
                if described.limits == nil { described.limits = OperatorDescriptor.WasmLimits() }
            }
        default:
            report(kinds[1].value, scope, "an operator has one kind; found \(kinds.map { "'\($0.key)'" }.joined(separator: " and "))")
        }
        if kinds.first?.key != "wasm" {
            for value in restartNodes {
                report(
                    value, scope,
                    "restart_policy and max_restarts apply to 'wasm' operators; others share their process, whose node's restart_policy applies"
                )
            }
            described.restartPolicy = .never
        }
        if let limitsNode, kinds.first?.key != "wasm" {
            report(limitsNode, scope.with("key 'limits'"), "limits apply to 'wasm' operators only; a shared library runs unsandboxed")
            described.limits = nil
        }
        guard id != nil else { return nil }
        return (described, inputs)
    }

    /// `build/op` is the library `build/libop.so`, as dora names it; a name ending in `.so` (or
    /// `.so.N`) is taken as it is. Looked for unless a build step will make it.
    mutating func sharedLibrary(_ path: String, at value: Node, _ scope: Scope, hasBuild: Bool) -> OperatorDescriptor.Kind {
        guard !path.isEmpty else {
            report(value, scope, "must not be empty")
            return .sharedLibrary(path: path, resolvedPath: "")
        }
        let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory + "/"))
        var file = url.standardizedFileURL.path
        let name = url.lastPathComponent
        if !(name.hasSuffix(".so") || name.contains(".so.")) {
            file = url.deletingLastPathComponent().standardizedFileURL.path + "/lib\(name).so"
        }
        if case .problem(let message) = loader.lookUpLibrary(file, written: path, hasBuild: hasBuild) {
            report(value, scope, message)
        }
        return .sharedLibrary(path: path, resolvedPath: file)
    }

    /// A Wasm module: the path as written, relative to the dataflow folder. Looked for unless a
    /// build step will make it.
    mutating func wasmModule(_ path: String, at value: Node, _ scope: Scope, hasBuild: Bool) -> OperatorDescriptor.Kind {
        guard !path.isEmpty else {
            report(value, scope, "must not be empty")
            return .wasm(path: path, resolvedPath: "")
        }
        let file = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory + "/")).standardizedFileURL.path
        if case .problem(let message) = loader.lookUpLibrary(file, written: path, hasBuild: hasBuild) {
            report(value, scope, message.replacingOccurrences(of: "library '", with: "module '"))
        }
        return .wasm(path: path, resolvedPath: file)
    }

    /// `limits: {fuel_per_event: N, memory: 64MiB}`: each optional, each bounded.
    mutating func parseLimits(_ value: Node, _ scope: Scope) -> OperatorDescriptor.WasmLimits {
        var limits = OperatorDescriptor.WasmLimits()
        guard case .mapping(let mapping) = value else {
            report(value, scope, "expected a mapping with fuel_per_event and/or memory, found \(value.kindDescription)")
            return limits
        }
        for (keyNode, item) in mapping {
            guard let key = mappingKey(keyNode, scope) else { continue }
            let keyScope = scope.with("key '\(key)'")
            switch key {
            case "fuel_per_event":
                if let fuel = integer(item, keyScope, minimum: 1) { limits.fuelPerEvent = UInt64(fuel) }
            case "memory":
                if let bytes = byteSize(item, keyScope) { limits.memory = bytes }
            default:
                report(keyNode, scope, "unknown key '\(key)' (valid keys: \(Self.limitKeys.joined(separator: ", ")))")
            }
        }
        return limits
    }

    /// A size in bytes: a whole number, or one with KiB, MiB or GiB; at most 4 GiB (32-bit Wasm).
    mutating func byteSize(_ value: Node, _ scope: Scope) -> UInt64? {
        guard let written = text(value, scope) else { return nil }
        let units: [(String, UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("", 1)]
        for (suffix, factor) in units where written.hasSuffix(suffix) {
            let digits = written.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let number = UInt64(digits), number > 0 else { break }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
            guard !overflow, bytes <= OperatorDescriptor.WasmLimits.maximumMemory else {
                report(value, scope, "'\(written)' is more than a Wasm module can address (4 GiB)")
                return nil
            }
            return bytes
        }
        report(value, scope, "'\(written)' is not a size (write bytes, or a number with KiB, MiB or GiB)")
        return nil
    }
}
