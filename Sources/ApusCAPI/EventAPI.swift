// apus_event_*: reading what a node received. Pointers handed out live as long as the event.
import ApusNode
import CApusHeader
import Glibc

/// An event as C holds it. Strings and lists C asks for are converted once and kept until the
/// event is freed; the payload itself is never copied.
final class CEvent {
    let owner: CNode
    private(set) var event: Event
    private(set) var type: apus_event_type_t
    private var input: Input?
    /// Lent by the operator runtime for one on_event call: the runtime reuses it, so C may not free it.
    var isLent = false
    /// Owned C memory: converted strings and lists, freed with the event.
    private var allocations: [UnsafeMutableRawPointer] = []
    private var converted: [Int: (pointer: UnsafeRawPointer, count: Int)] = [:]
    private var keys: [Int: UnsafePointer<CChar>] = [:]
    private var text: (id: UnsafePointer<CChar>, message: UnsafePointer<CChar>)?

    init(owner: CNode, event: Event) {
        self.owner = owner
        self.event = event
        (type, input) = Self.classify(event)
    }

    /// The C type of `event`, and its input if it is one.
    private static func classify(_ event: Event) -> (apus_event_type_t, Input?) {
        switch event {
        case .input(let input): (APUS_EVENT_INPUT, input)
        case .inputClosed: (APUS_EVENT_INPUT_CLOSED, nil)
        case .stop: (APUS_EVENT_STOP, nil)
        case .nodeFailed: (APUS_EVENT_NODE_FAILED, nil)
        case .error: (APUS_EVENT_ERROR, nil)
        }
    }

    /// Makes this the C form of `event` instead (what it converted for the last one is freed):
    /// the operator runtime lends one event object per operator, so a call costs no allocation.
    func reuse(for event: Event) {
        if !allocations.isEmpty {
            for allocation in allocations { free(allocation) }
            allocations.removeAll(keepingCapacity: true)
            converted.removeAll(keepingCapacity: true)
            keys.removeAll(keepingCapacity: true)
        }
        text = nil
        self.event = event
        (type, input) = Self.classify(event)
    }

    deinit {
        for allocation in allocations { free(allocation) }
    }

    var id: UnsafePointer<CChar> {
        if let input { return owner.eventIDs[input.index] }
        return strings.id
    }

    var message: UnsafePointer<CChar> { strings.message }

    /// Id and message of the events that are not inputs, made on first use.
    private var strings: (id: UnsafePointer<CChar>, message: UnsafePointer<CChar>) {
        if let text { return text }
        let made: (UnsafePointer<CChar>, UnsafePointer<CChar>)
        switch event {
        case .inputClosed(let id):
            made = (owner.node.inputIDs.firstIndex(of: id).map { owner.eventIDs[$0] } ?? keep(id), emptyString)
        case .nodeFailed(let failure):
            let inputs = failure.inputs.map { "'\($0)'" }.joined(separator: ", ")
            made = (keep(failure.node), keep("\(failure.message); closing inputs \(inputs)"))
        case .error(let message):
            made = (emptyString, keep(message))
        case .input, .stop:
            made = (emptyString, emptyString)
        }
        text = made
        return made
    }

    func requireInput() throws(APIError) -> Input {
        guard let input else { throw APIError(APUS_ERROR_WRONG_TYPE, "the event is not an INPUT") }
        return input
    }

    func parameter(_ key: UnsafePointer<CChar>?) throws(APIError) -> (index: Int, value: Parameter) {
        let key = try requireText(key, "key")
        let input = try requireInput()
        guard let index = input.metadata.parameters.firstIndex(where: { $0.key == key }) else {
            let known = input.metadata.parameters.map { "'\($0.key)'" }.joined(separator: ", ")
            throw APIError(
                APUS_ERROR_NOT_FOUND, "input '\(input.id)' has no parameter '\(key)' (it has: \(known.isEmpty ? "none" : known))")
        }
        return (index, input.metadata.parameters[index].value)
    }

    func key(at index: Int) -> UnsafePointer<CChar> {
        if let key = keys[index] { return key }
        let key = keep(input!.metadata.parameters[index].key)
        keys[index] = key
        return key
    }

    /// The C form of parameter `index`, converted on first use.
    func converted(_ index: Int, _ make: () -> (UnsafeMutableRawPointer, Int)) -> (pointer: UnsafeRawPointer, count: Int) {
        if let done = converted[index] { return done }
        let (pointer, count) = make()
        allocations.append(pointer)
        converted[index] = (UnsafeRawPointer(pointer), count)
        return (UnsafeRawPointer(pointer), count)
    }

    func keep(_ string: String) -> UnsafePointer<CChar> {
        let copy = strdup(string)!
        allocations.append(copy)
        return UnsafePointer(copy)
    }

    func list<T>(_ values: [T]) -> (UnsafeMutableRawPointer, Int) {
        let memory = malloc(max(1, values.count * MemoryLayout<T>.stride))!
        values.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(memory), byteCount: $0.count) }
        return (memory, values.count)
    }
}

/// The payload of an empty input (a timer tick): a valid pointer with nothing behind it.
nonisolated(unsafe) private let emptyPayload = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64))

private func wrongType(_ key: String, _ value: Parameter, wanted: String) -> APIError {
    APIError(APUS_ERROR_WRONG_TYPE, "parameter '\(key)' is \(value.typeName), not \(wanted)")
}

extension Parameter {
    var paramType: apus_param_type_t {
        switch self {
        case .bool: APUS_PARAM_BOOL
        case .int: APUS_PARAM_INT
        case .float: APUS_PARAM_FLOAT
        case .string: APUS_PARAM_STRING
        case .bools: APUS_PARAM_BOOL_LIST
        case .ints: APUS_PARAM_INT_LIST
        case .floats: APUS_PARAM_FLOAT_LIST
        case .strings: APUS_PARAM_STRING_LIST
        }
    }

    var typeName: String {
        switch self {
        case .bool: "a bool"
        case .int: "an int"
        case .float: "a float"
        case .string: "a string"
        case .bools: "a list of bools"
        case .ints: "a list of ints"
        case .floats: "a list of floats"
        case .strings: "a list of strings"
        }
    }
}

@c @implementation
public func apus_event_type(_ event: OpaquePointer?) -> apus_event_type_t {
    value("apus_event_type", fallback: APUS_EVENT_ERROR) { () throws(APIError) in try resolve(event, .event, as: CEvent.self).type }
}

@c @implementation
public func apus_event_id(_ event: OpaquePointer?) -> UnsafePointer<CChar>? {
    value("apus_event_id", fallback: nil) { () throws(APIError) in try resolve(event, .event, as: CEvent.self).id }
}

@c @implementation
public func apus_event_message(_ event: OpaquePointer?) -> UnsafePointer<CChar>? {
    value("apus_event_message", fallback: nil) { () throws(APIError) in try resolve(event, .event, as: CEvent.self).message }
}

@c @implementation
public func apus_event_data(_ event: OpaquePointer?, _ outLength: UnsafeMutablePointer<Int>?) -> UnsafeRawPointer? {
    outLength?.pointee = 0
    return value("apus_event_data", fallback: nil) { () throws(APIError) -> UnsafeRawPointer? in
        let bytes = try resolve(event, .event, as: CEvent.self).requireInput().bytes
        outLength?.pointee = bytes.count
        return bytes.isEmpty ? emptyPayload : bytes.baseAddress
    }
}

@c @implementation
public func apus_event_data_type(_ event: OpaquePointer?) -> apus_type_t {
    value("apus_event_data_type", fallback: APUS_TYPE_UINT8) { () throws(APIError) in
        apus_type_t(rawValue: UInt32(try resolve(event, .event, as: CEvent.self).requireInput().elementType.rawValue))
    }
}

@c @implementation
public func apus_event_view(_ event: OpaquePointer?, _ outView: UnsafeMutablePointer<apus_input_view_t>?) -> apus_status_t {
    status("apus_event_view") { () throws(APIError) in
        let outView = try requireOut(outView, "out_view")
        let owner = try resolve(event, .event, as: CEvent.self)
        let input = try owner.requireInput()
        let bytes = input.bytes
        let (dims, rank) = owner.converted(-1) { owner.list(input.shape) }
        outView.pointee = apus_input_view_t(
            data: bytes.isEmpty ? emptyPayload : bytes.baseAddress, length: bytes.count,
            type: apus_type_t(rawValue: UInt32(input.elementType.rawValue)), rank: rank,
            dims: dims.assumingMemoryBound(to: UInt64.self))
    }
}

@c @implementation
public func apus_event_shape(
    _ event: OpaquePointer?, _ outDims: UnsafeMutablePointer<UnsafePointer<UInt64>?>?, _ outRank: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    status("apus_event_shape") { () throws(APIError) in
        let outDims = try requireOut(outDims, "out_dims")
        let outRank = try requireOut(outRank, "out_rank")
        let owner = try resolve(event, .event, as: CEvent.self)
        let shape = try owner.requireInput().shape
        let (pointer, count) = owner.converted(-1) { owner.list(shape) }
        outDims.pointee = pointer.assumingMemoryBound(to: UInt64.self)
        outRank.pointee = count
    }
}

@c @implementation
public func apus_event_timestamp(_ event: OpaquePointer?) -> UInt64 {
    value("apus_event_timestamp", fallback: 0) { () throws(APIError) in
        let owner = try resolve(event, .event, as: CEvent.self)
        guard case .input(let input) = owner.event else { return 0 }
        return input.timestamp
    }
}

@c @implementation
public func apus_event_param_count(_ event: OpaquePointer?) -> Int {
    value("apus_event_param_count", fallback: 0) { () throws(APIError) in
        let owner = try resolve(event, .event, as: CEvent.self)
        guard case .input(let input) = owner.event else { return 0 }
        return input.metadata.parameters.count
    }
}

@c @implementation
public func apus_event_param_at(
    _ event: OpaquePointer?, _ index: Int, _ outKey: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ outType: UnsafeMutablePointer<apus_param_type_t>?
) -> apus_status_t {
    status("apus_event_param_at") { () throws(APIError) in
        let owner = try resolve(event, .event, as: CEvent.self)
        let parameters = try owner.requireInput().metadata.parameters
        guard index >= 0, index < parameters.count else {
            throw .invalidArgument("parameter index \(UInt(bitPattern: index)) is out of range (\(parameters.count) parameters)")
        }
        outKey?.pointee = owner.key(at: index)
        outType?.pointee = parameters[index].value.paramType
    }
}

@c @implementation
public func apus_event_param_type(
    _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outType: UnsafeMutablePointer<apus_param_type_t>?
) -> apus_status_t {
    status("apus_event_param_type") { () throws(APIError) in
        let outType = try requireOut(outType, "out_type")
        outType.pointee = try resolve(event, .event, as: CEvent.self).parameter(key).value.paramType
    }
}

/// Reads parameter `key` of `event` as a single value of the type `extract` accepts.
private func scalarParameter<Value>(
    _ function: StaticString, _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Value>?,
    wanted: String, _ extract: (Parameter) -> Value?
) -> apus_status_t {
    status(function) { () throws(APIError) in
        let out = try requireOut(out, "out_value")
        let (_, parameter) = try resolve(event, .event, as: CEvent.self).parameter(key)
        guard let value = extract(parameter) else { throw wrongType(String(cString: key!), parameter, wanted: wanted) }
        out.pointee = value
    }
}

/// Reads parameter `key` of `event` as a list, converted to C memory owned by the event.
private func listParameter<Element>(
    _ function: StaticString, _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?,
    _ outValues: UnsafeMutablePointer<UnsafePointer<Element>?>?, _ outCount: UnsafeMutablePointer<Int>?,
    wanted: String, _ extract: (Parameter, CEvent) -> [Element]?
) -> apus_status_t {
    status(function) { () throws(APIError) in
        let outValues = try requireOut(outValues, "out_values")
        let outCount = try requireOut(outCount, "out_count")
        let owner = try resolve(event, .event, as: CEvent.self)
        let (index, parameter) = try owner.parameter(key)
        guard let values = extract(parameter, owner) else { throw wrongType(String(cString: key!), parameter, wanted: wanted) }
        let (pointer, count) = owner.converted(index) { owner.list(values) }
        outValues.pointee = pointer.assumingMemoryBound(to: Element.self)
        outCount.pointee = count
    }
}

@c @implementation
public func apus_event_param_bool(_ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValue: UnsafeMutablePointer<Bool>?)
    -> apus_status_t
{
    scalarParameter("apus_event_param_bool", event, key, outValue, wanted: "a bool") {
        if case .bool(let flag) = $0 { flag } else { nil }
    }
}

@c @implementation
public func apus_event_param_int(_ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValue: UnsafeMutablePointer<Int64>?)
    -> apus_status_t
{
    scalarParameter("apus_event_param_int", event, key, outValue, wanted: "an int") {
        if case .int(let number) = $0 { number } else { nil }
    }
}

@c @implementation
public func apus_event_param_float(_ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValue: UnsafeMutablePointer<Double>?)
    -> apus_status_t
{
    scalarParameter("apus_event_param_float", event, key, outValue, wanted: "a float") {
        if case .float(let number) = $0 { number } else { nil }
    }
}

@c @implementation
public func apus_event_param_string(
    _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValue: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ outLength: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    status("apus_event_param_string") { () throws(APIError) in
        let outValue = try requireOut(outValue, "out_value")
        let owner = try resolve(event, .event, as: CEvent.self)
        let (index, value) = try owner.parameter(key)
        guard case .string(let text) = value else { throw wrongType(String(cString: key!), value, wanted: "a string") }
        let (pointer, count) = owner.converted(index) { (UnsafeMutableRawPointer(strdup(text)!), text.utf8.count) }
        outValue.pointee = pointer.assumingMemoryBound(to: CChar.self)
        outLength?.pointee = count
    }
}

@c @implementation
public func apus_event_param_bools(
    _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValues: UnsafeMutablePointer<UnsafePointer<Bool>?>?,
    _ outCount: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    listParameter("apus_event_param_bools", event, key, outValues, outCount, wanted: "a list of bools") { parameter, _ in
        if case .bools(let flags) = parameter { flags } else { nil }
    }
}

@c @implementation
public func apus_event_param_ints(
    _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValues: UnsafeMutablePointer<UnsafePointer<Int64>?>?,
    _ outCount: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    listParameter("apus_event_param_ints", event, key, outValues, outCount, wanted: "a list of ints") { parameter, _ in
        if case .ints(let numbers) = parameter { numbers } else { nil }
    }
}

@c @implementation
public func apus_event_param_floats(
    _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ outValues: UnsafeMutablePointer<UnsafePointer<Double>?>?,
    _ outCount: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    listParameter("apus_event_param_floats", event, key, outValues, outCount, wanted: "a list of floats") { parameter, _ in
        if case .floats(let numbers) = parameter { numbers } else { nil }
    }
}

@c @implementation
public func apus_event_param_strings(
    _ event: OpaquePointer?, _ key: UnsafePointer<CChar>?,
    _ outValues: UnsafeMutablePointer<UnsafePointer<UnsafePointer<CChar>?>?>?, _ outCount: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    listParameter("apus_event_param_strings", event, key, outValues, outCount, wanted: "a list of strings") { parameter, owner in
        // Each string is copied once into memory the event owns; the list points at the copies.
        if case .strings(let texts) = parameter { texts.map { Optional(owner.keep($0)) } } else { nil }
    }
}

@c @implementation
public func apus_event_free(_ event: OpaquePointer?) -> apus_status_t {
    guard event != nil else { return APUS_OK }
    return status("apus_event_free") { () throws(APIError) in
        if try resolve(event, .event, as: CEvent.self).isLent {
            throw .invalidArgument("the event belongs to the operator runtime, which frees it after on_event returns")
        }
        _ = try take(event, .event, as: CEvent.self)
    }
}
