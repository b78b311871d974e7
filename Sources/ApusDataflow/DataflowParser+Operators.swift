// Operators: the plugins a runtime node hosts, their keys, kinds and libraries.
import Foundation
import Yams

extension DataflowParser {
    static let operatorKeys = [
        "id", "name", "description", "build", "shared-library", "wasm", "python", "numba", "limits", "params", "restart_policy",
        "max_restarts", "inputs", "outputs", "output_types", "input_types", "output_metadata", "pattern",
    ]
    static let operatorKinds = ["shared-library", "wasm", "python", "numba"]
    static let limitKeys = ["fuel_per_event", "memory"]
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
                report(
                    item, keyScope,
                    "expected a mapping with 'id' and its kind (\(Self.operatorKinds.joined(separator: ", "))), found \(item.kindDescription)"
                )
                continue
            }
            guard
                var parsed = parseOperator(
                    mapping, at: item, label: "#\(index + 1)", scope: scope, nodeIndex: nodeIndex, defaultID: single ? node.id : nil)
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
            func qualified(_ ports: [PortType]) -> [PortType] {
                ports.map {
                    PortType(port: node.qualified($0.port, of: parsed.operator.id), type: $0.type, line: $0.line, column: $0.column)
                }
            }
            node.outputTypes += qualified(parsed.operator.outputTypes)
            node.inputTypes += qualified(parsed.operator.inputTypes)
            for (output, keys) in parsed.operator.outputMetadata {
                node.outputMetadata[node.qualified(output, of: parsed.operator.id)] = keys
            }
            for position in parsed.inputs.indices {
                parsed.inputs[position].0.id = node.qualified(parsed.inputs[position].0.id, of: parsed.operator.id)
            }
            inputs += parsed.inputs
        }
        return inputs
    }

    /// One operator; nil when it has no usable id.
    /// `defaultID`: what a single `operator:` without an id is called (its node's id, as in dora).
    mutating func parseOperator(
        _ mapping: Node.Mapping, at item: Node, label: String, scope nodeScope: Scope, nodeIndex: Int, defaultID: String? = nil
    ) -> (operator: OperatorDescriptor, inputs: [(InputDescriptor, PendingSource?)])? {
        var scope = nodeScope.with("operator \(label)")
        var id: String?
        if let idNode = mapping["id"] {
            id = parseID(idNode, scope.with("key 'id'"), what: "operator id")
            if let id { scope = nodeScope.with("operator '\(id)'") }
        } else if let defaultID {
            id = defaultID
            scope = nodeScope.with("operator '\(defaultID)'")
        } else {
            report(item, scope, "missing required key 'id'")
        }
        var described = OperatorDescriptor(id: id ?? label, kind: .sharedLibrary(path: "", resolvedPath: ""))
        var inputs: [(InputDescriptor, PendingSource?)] = []
        var kinds: [(key: String, value: Node)] = []
        var limitsNode: Node?
        var paramsNode: Node?
        var annotations = PortAnnotations()
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
            case "shared-library", "wasm", "python", "numba":
                kinds.append((key, value))
            case "params":
                paramsNode = value
                described.params = parseOperatorParams(value, keyScope)
            case _ where PortAnnotations.keys.contains(key):
                parseAnnotation(key, value, keyScope, into: &annotations)
            case "limits":
                limitsNode = value
                described.limits = parseLimits(value, keyScope)
            case "restart_policy":
                restartNodes.append(value)
                if let policy = choice(value, keyScope, RestartPolicy.self) { described.restartPolicy = policy }
            case "max_restarts":
                restartNodes.append(value)
                if let count = integer(value, keyScope, minimum: 0) { described.maxRestarts = Int(count) }
            case "send_stdout_as", "send_logs_as", "min_log_level", "max_log_size", "max_rotated_files":
                report(
                    keyNode, scope,
                    "\(key) applies to the output of a process: set it on the runtime node, whose process runs this operator")
            default:
                report(keyNode, scope, "unknown key '\(key)' (valid keys: \(Self.operatorKeys.joined(separator: ", ")))")
            }
        }
        switch kinds.count {
        case 0:
            report(item, scope, "missing its kind: one of \(Self.operatorKinds.map { "'\($0)'" }.joined(separator: ", "))")
        case 1:
            let (key, value) = kinds[0]
            let kindScope = scope.with("key '\(key)'")
            let hasBuild = described.build != nil
            if key == "python" {
                if let path = pythonSource(value, kindScope) {
                    described.kind = .python(path: path, resolvedPath: sourceFile(path, at: value, kindScope, hasBuild: hasBuild))
                }
            } else if let path = text(value, kindScope) {
                switch key {
                case "shared-library":
                    described.kind = sharedLibrary(path, at: value, kindScope, hasBuild: hasBuild)
                case "wasm":
                    described.kind = .wasm(
                        path: path, resolvedPath: sourceFile(path, at: value, kindScope, hasBuild: hasBuild, what: "module"))
                    if described.limits == nil { described.limits = OperatorDescriptor.WasmLimits() }
                default:
                    if let kind = numbaFunction(path, at: value, kindScope, hasBuild: hasBuild) { described.kind = kind }
                }
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
        if let paramsNode, kinds.first?.key != "numba" {
            report(
                paramsNode, scope.with("key 'params'"), "params apply to 'numba' operators only (they fill the function's scalar arguments)"
            )
            described.params = []
        }
        if let limitsNode, kinds.first?.key != "wasm" {
            report(limitsNode, scope.with("key 'limits'"), "limits apply to 'wasm' operators only; a shared library runs unsandboxed")
            described.limits = nil
        }
        (described.outputTypes, described.inputTypes) = (annotations.outputTypes, annotations.inputTypes)
        described.outputMetadata = annotations.requiredMetadata(of: described.outputs)
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

    /// A file the operator's code is in (a Wasm module, a Python file): made absolute against the
    /// dataflow folder, and looked for unless a build step will make it.
    mutating func sourceFile(_ path: String, at value: Node, _ scope: Scope, hasBuild: Bool, what: String = "file") -> String {
        guard !path.isEmpty else {
            report(value, scope, "must not be empty")
            return ""
        }
        let file = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory + "/")).standardizedFileURL.path
        if case .problem(let message) = loader.lookUpLibrary(file, written: path, hasBuild: hasBuild, what: what) {
            report(value, scope, message)
        }
        return file
    }

    /// `python: op.py`, or dora's long form `python: {source: op.py}`.
    mutating func pythonSource(_ value: Node, _ scope: Scope) -> String? {
        guard case .mapping(let mapping) = value else { return text(value, scope) }
        var source: String?
        for (keyNode, item) in mapping {
            guard let key = mappingKey(keyNode, scope) else { continue }
            switch key {
            case "source":
                source = text(item, scope.with("key 'source'"))
            case "conda_env":
                report(
                    keyNode, scope,
                    "conda_env is not supported: Python operators run in the Python that Python nodes use ($APUS_PYTHON, else python3)")
            default:
                report(keyNode, scope, "unknown key '\(key)' (valid keys: source)")
            }
        }
        if source == nil, mapping["source"] == nil { report(value, scope, "missing required key 'source'") }
        return source
    }

    /// `numba: module.py:function`.
    mutating func numbaFunction(_ written: String, at value: Node, _ scope: Scope, hasBuild: Bool) -> OperatorDescriptor.Kind? {
        guard let colon = written.lastIndex(of: ":"), colon != written.startIndex else {
            report(
                value, scope, "'\(written)' is not MODULE:FUNCTION (a Python file and the name of a numba @cfunc in it, e.g. ops.py:scale)")
            return nil
        }
        let path = String(written[..<colon])
        let function = String(written[written.index(after: colon)...])
        guard Self.isPythonIdentifier(function) else {
            report(value, scope, "'\(function)' is not a Python function name (in '\(written)')")
            return nil
        }
        return .numba(path: path, resolvedPath: sourceFile(path, at: value, scope, hasBuild: hasBuild), function: function)
    }

    static func isPythonIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.properties.isXIDStart else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0.properties.isXIDContinue }
    }

    /// `params: {gain: 0.5, taps: 8, invert: false}`: a Numba function's scalar arguments by name.
    mutating func parseOperatorParams(_ value: Node, _ scope: Scope) -> [EnvVariable] {
        guard case .mapping(let mapping) = value else {
            report(value, scope, "expected a mapping of argument names to numbers or bools, found \(value.kindDescription)")
            return []
        }
        var params: [EnvVariable] = []
        for (keyNode, item) in mapping {
            guard let name = mappingKey(keyNode, scope) else { continue }
            guard Self.isPythonIdentifier(name) else {
                report(keyNode, scope, "'\(name)' is not a Python argument name")
                continue
            }
            let itemScope = scope.with("'\(name)'")
            guard case .scalar(let scalar) = item else {
                report(item, itemScope, "expected a number or bool, found \(item.kindDescription)")
                continue
            }
            switch ScalarValue(scalar) {
            case .bool(let flag): params.append(EnvVariable(name: name, value: .bool(flag)))
            case .int(let number): params.append(EnvVariable(name: name, value: .int(number)))
            case .float(let number) where number.isFinite: params.append(EnvVariable(name: name, value: .float(number)))
            default: report(item, itemScope, "expected a number or bool, found '\(scalar.string)'")
            }
        }
        return params
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
