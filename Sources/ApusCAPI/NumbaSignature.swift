// The signature of a numba @cfunc, as numba writes it ("(float32*, int64, float32*, int64,
// float64) -> int64"), and the call forms a Numba operator accepts.
import ApusTransport
import CLibFFI

/// A numba type a Numba operator can pass: a scalar, or a pointer to elements of one.
struct NumbaScalar: Equatable {
    let name: String
    let element: ElementType
    var isInteger: Bool { !isFloat && element != .bool }
    var isFloat: Bool { element == .float16 || element == .float32 || element == .float64 }

    static let all: [String: ElementType] = [
        "int8": .int8, "int16": .int16, "int32": .int32, "int64": .int64, "uint8": .uint8, "uint16": .uint16, "uint32": .uint32,
        "uint64": .uint64, "float32": .float32, "float64": .float64, "bool": .bool,
    ]

    init?(_ name: String) {
        guard let element = Self.all[name] else { return nil }
        self.name = name
        self.element = element
    }

    /// libffi's type for it (bool is one byte, as numba passes it).
    var ffiType: UnsafeMutablePointer<ffi_type> {
        switch element {
        case .int8: apus_ffi_sint8()
        case .int16: apus_ffi_sint16()
        case .int32: apus_ffi_sint32()
        case .int64: apus_ffi_sint64()
        case .uint8, .bool: apus_ffi_uint8()
        case .uint16: apus_ffi_uint16()
        case .uint32: apus_ffi_uint32()
        case .uint64: apus_ffi_uint64()
        case .float32: apus_ffi_float()
        default: apus_ffi_double()
        }
    }
}

struct NumbaSignature {
    enum Argument: Equatable {
        case pointer(NumbaScalar)
        case scalar(NumbaScalar)
    }

    let text: String
    let arguments: [Argument]
    let result: NumbaScalar?

    /// What it is called with per event.
    enum Form {
        /// (T* in, n, U* out, capacity, scalars...): writes a message for the one output.
        case transform(input: NumbaScalar, output: NumbaScalar)
        /// (T* in, n, scalars...): reads each message, sends nothing.
        case sink(input: NumbaScalar)
    }

    static let accepted = """
        it must be (T* data, int64 n, U* out, int64 capacity, scalars...) -> int64, which writes up to `capacity` \
        elements for the operator's one output and returns how many (negative: an error), or (T* data, int64 n, \
        scalars...) -> int64 for an operator without outputs; T and U are int8 to int64, uint8 to uint64, float32, \
        float64 or bool, n and capacity any integer type, and each scalar is a number or bool given under `params:`
        """

    /// Parses numba's text of a signature; nil if it is not of that shape.
    init?(_ text: String) {
        self.text = text
        guard text.hasPrefix("("), let arrow = text.firstRange(of: ") -> ") else { return nil }
        let list = text[text.index(after: text.startIndex)..<arrow.lowerBound]
        let returned = String(text[arrow.upperBound...])
        var arguments: [Argument] = []
        for part in list.split(separator: ",").map({ String($0.filter { $0 != " " }) }) where !part.isEmpty {
            if part.hasSuffix("*"), let scalar = NumbaScalar(String(part.dropLast())) {
                arguments.append(.pointer(scalar))
            } else if let scalar = NumbaScalar(part) {
                arguments.append(.scalar(scalar))
            } else {
                return nil
            }
        }
        self.arguments = arguments
        result = returned == "none" ? nil : NumbaScalar(returned)
        if result == nil, returned != "none" { return nil }
    }

    /// How an operator with `outputs` outputs calls it, and which arguments are its parameters;
    /// or why it cannot.
    func form(outputs: Int) -> Result<(form: Form, parameters: Range<Int>), SignatureProblem> {
        guard let result, result.isInteger else { return .failure(.init("it returns \(result?.name ?? "nothing"), not an integer")) }
        guard arguments.count >= 2, case .pointer(let input) = arguments[0], case .scalar(let count) = arguments[1], count.isInteger else {
            return .failure(.init("it does not begin with a pointer to the data and an integer count"))
        }
        if arguments.count >= 4, case .pointer(let output) = arguments[2] {
            guard case .scalar(let capacity) = arguments[3], capacity.isInteger else {
                return .failure(.init("its output pointer is not followed by an integer capacity"))
            }
            guard outputs == 1 else {
                return .failure(.init("it writes one output, and the operator declares \(outputs)"))
            }
            return checkedScalars(from: 4).map { (.transform(input: input, output: output), $0) }
        }
        guard outputs == 0 else {
            return .failure(.init("it has no output pointer, and the operator declares \(outputs) output\(outputs == 1 ? "" : "s")"))
        }
        return checkedScalars(from: 2).map { (.sink(input: input), $0) }
    }

    private func checkedScalars(from start: Int) -> Result<Range<Int>, SignatureProblem> {
        for index in start..<arguments.count {
            if case .pointer = arguments[index] {
                return .failure(.init("argument \(index + 1) is a pointer where a scalar parameter goes"))
            }
        }
        return .success(start..<arguments.count)
    }
}

struct SignatureProblem: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A function called through libffi, its call interface prepared once: arguments go into one
/// 8-byte slot each, at their declared width (little-endian, so the low bytes are the value).
final class ForeignCall {
    private let cif = UnsafeMutablePointer<ffi_cif>.allocate(capacity: 1)
    private let types: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>
    let slots: UnsafeMutablePointer<UInt64>
    private let pointers: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let result = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
    private let function: @convention(c) () -> Void
    private let returns: NumbaScalar?
    let count: Int

    init?(address: UnsafeRawPointer, signature: NumbaSignature) {
        count = signature.arguments.count
        types = .allocate(capacity: max(count, 1))
        slots = .allocate(capacity: max(count, 1))
        pointers = .allocate(capacity: max(count, 1))
        for (index, argument) in signature.arguments.enumerated() {
            switch argument {
            case .pointer: types[index] = apus_ffi_pointer()
            case .scalar(let scalar): types[index] = scalar.ffiType
            }
            slots[index] = 0
            pointers[index] = UnsafeMutableRawPointer(slots + index)
        }
        returns = signature.result
        function = unsafeBitCast(address, to: (@convention(c) () -> Void).self)
        let returnType = signature.result?.ffiType ?? apus_ffi_void()
        guard ffi_prep_cif(cif, FFI_DEFAULT_ABI, UInt32(count), returnType, types) == FFI_OK else { return nil }
    }

    deinit {
        cif.deallocate()
        types.deallocate()
        slots.deallocate()
        pointers.deallocate()
        result.deallocate()
    }

    /// Calls it with the slots as they are; an integer result, sign-extended from its width.
    func call() -> Int64 {
        result[0] = 0
        ffi_call(cif, function, result, pointers)
        switch returns?.element {
        case .int8?, .int16?, .int32?: return Int64(Int32(truncatingIfNeeded: result[0]))
        case .uint8?, .uint16?, .uint32?: return Int64(UInt32(truncatingIfNeeded: result[0]))
        default: return Int64(bitPattern: result[0])
        }
    }

    /// Sets slot `index` to an integer of the argument's type.
    func set(_ index: Int, integer value: Int64) {
        slots[index] = UInt64(bitPattern: value)
    }

    func set(_ index: Int, pointer: UnsafeRawPointer?) {
        slots[index] = UInt64(UInt(bitPattern: pointer))
    }

    /// Sets slot `index` to a float of the argument's type.
    func set(_ index: Int, float value: Double, as scalar: NumbaScalar) {
        slots[index] = scalar.element == .float32 ? UInt64(Float(value).bitPattern) : value.bitPattern
    }
}
