// Numba operators: a numba @cfunc, compiled once at start-up in the embedded interpreter, then
// called through its address from the operator's thread, with no interpreter and no GIL. The input
// is the sample in place; the output is written straight into a fresh sample of the output.
@_spi(CAPI) import ApusNode
import ApusTransport

final class NumbaOperator: OperatorInstance {
    let id: String
    let view: CNode
    let python: EmbeddedPython
    let signature: NumbaSignature
    let form: NumbaSignature.Form
    let call: ForeignCall
    /// The output's index in the node's outputs (a transform has one).
    let output: Int?

    /// `function` in the module at `path`; `parameters` fill its scalar arguments by name.
    init(path: String, function: String, id: String, parameters: [(String, String)], view: CNode) throws(OperatorLoadError) {
        self.id = id
        self.view = view
        python = try EmbeddedPython.shared()
        let python = python
        let (address, text, names) = try python.locked { () throws(OperatorLoadError) in
            guard let result = python.call("load_numba", [.text(path), .text(function), .text(id), .text(python.python)]) else {
                throw OperatorLoadError(description: "apus.operators.load_numba failed (see the traceback above)")
            }
            defer { python.release(result) }
            let reason = python.text(result, 0) ?? "apus.operators.load_numba gave no answer"
            guard reason.isEmpty, let address = python.integer(result, 1), let text = python.text(result, 2),
                let names = python.text(result, 3)
            else { throw OperatorLoadError(description: reason) }
            return (address, text, names.split(separator: ",").map(String.init))
        }
        let described = "'\(function)' has signature \(text)"
        guard let signature = NumbaSignature(text) else {
            throw OperatorLoadError(description: "\(described), which Apus cannot call: \(NumbaSignature.accepted)")
        }
        let outputs = view.outputIndices ?? []
        let chosen: (form: NumbaSignature.Form, parameters: Range<Int>)
        switch signature.form(outputs: outputs.count) {
        case .success(let found): chosen = found
        case .failure(let problem):
            throw OperatorLoadError(description: "\(described), which Apus cannot call: \(problem.reason); \(NumbaSignature.accepted)")
        }
        guard address != 0, let pointer = UnsafeRawPointer(bitPattern: Int(address)),
            let call = ForeignCall(address: pointer, signature: signature)
        else {
            throw OperatorLoadError(description: "\(described), which libffi cannot prepare a call for")
        }
        self.signature = signature
        self.form = chosen.form
        self.call = call
        output = outputs.first
        try Self.fill(call, signature: signature, arguments: chosen.parameters, names: names, parameters: parameters, function: function)
    }

    /// Puts each `params:` value in the slot of the argument of its name, checked against its type.
    static func fill(
        _ call: ForeignCall, signature: NumbaSignature, arguments: Range<Int>, names: [String], parameters: [(String, String)],
        function: String
    ) throws(OperatorLoadError) {
        var unused = Dictionary(parameters, uniquingKeysWith: { _, last in last })
        for index in arguments {
            guard case .scalar(let scalar) = signature.arguments[index] else { continue }
            let name = index < names.count ? names[index] : "#\(index + 1)"
            guard let text = unused.removeValue(forKey: name) else {
                throw OperatorLoadError(description: "'\(function)' takes \(name) (\(scalar.name)), which `params:` does not give")
            }
            let mismatch = OperatorLoadError(description: "params: \(name) is \(text), which is not a \(scalar.name)")
            if scalar.element == .bool {
                guard text == "true" || text == "false" else { throw mismatch }
                call.set(index, integer: text == "true" ? 1 : 0)
            } else if scalar.isFloat {
                guard let value = Double(text) else { throw mismatch }
                call.set(index, float: value, as: scalar)
            } else {
                guard let value = Int64(text), scalar.holds(value) else { throw mismatch }
                call.set(index, integer: value)
            }
        }
        if let name = unused.keys.sorted().first {
            throw OperatorLoadError(
                description: "params: '\(function)' has no argument '\(name)' (its arguments: \(names.joined(separator: ", ")))")
        }
    }

    func handle(_ event: Event) -> OperatorOutcome {
        guard case .input(let input) = event else { return .proceed }
        let data = input.bytes
        let expected: NumbaScalar
        switch form {
        case .transform(let input, _), .sink(let input): expected = input
        }
        // Typed data of the function's type, or plain bytes that hold whole elements of it.
        let width = expected.element.byteWidth
        guard input.elementType == expected.element || (input.elementType == .uint8 && data.count % width == 0) else {
            let id = String(cString: view.eventIDs[input.index])
            return .failed("input '\(id)' brought \(input.elementType) data; '\(signature.text)' takes \(expected.name)")
        }
        let count = data.count / width
        call.set(0, pointer: data.baseAddress)
        call.set(1, integer: Int64(count))
        guard case .transform(_, let produced) = form, let output else {
            let status = call.call()
            return status < 0 ? .failed("returned \(status), an error") : .proceed
        }
        let node = view.node
        var sample: OutputSample<UInt8>
        do {
            sample = try node.allocate(output: output, byteCount: count * produced.element.byteWidth)
        } catch {
            return .failed("cannot allocate its output: \(error)")
        }
        call.set(2, pointer: sample.buffer.baseAddress)
        call.set(3, integer: Int64(count))
        let written = call.call()
        guard written >= 0 else { return .failed("returned \(written), an error") }
        guard written <= count else { return .failed("returned \(written), more than the \(count) elements it may write") }
        _ = sample.resize(to: Int(written) * produced.element.byteWidth)
        do {
            try node.send(sample, as: Metadata(elementType: produced.element))
        } catch {
            return .failed("cannot send on '\(node.outputIDs[output])': \(error)")
        }
        return .proceed
    }

    func drop() {
        python.locked { python.release(python.call("drop_numba", [.text(id)])) }
    }
}

extension NumbaScalar {
    /// Whether an integer parameter fits this integer type.
    func holds(_ value: Int64) -> Bool {
        switch element {
        case .int8: Int8(exactly: value) != nil
        case .int16: Int16(exactly: value) != nil
        case .int32: Int32(exactly: value) != nil
        case .uint8: UInt8(exactly: value) != nil
        case .uint16: UInt16(exactly: value) != nil
        case .uint32: UInt32(exactly: value) != nil
        case .uint64: value >= 0
        default: true
        }
    }
}
