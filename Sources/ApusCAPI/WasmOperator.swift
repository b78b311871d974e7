// Wasm operators: a WebAssembly module run sandboxed by WasmKit. The guest ABI is
// include/apus_wasm.h: the guest exports memory, apus_alloc and apus_on_event (apus_init and
// apus_drop if it wants them) and may import only the functions of module "apus" below. Each
// operator gets its own store and instance; a trap, fuel running out or memory past its limit
// stops that operator alone.
@_spi(CAPI) import ApusNode
import ApusTransport
import CApusHeader
@_spi(Fuzzing) import WasmKit
import Glibc

/// Caps a guest's linear memory (and tables) at the operator's `limits.memory`.
final class WasmMemoryCap: ResourceLimiter {
    let bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool { desired <= bytes }
    func limitTableGrowth(to desired: Int) throws -> Bool { desired <= 1 << 20 }
}

/// What the host functions see: the event being handled, and why the guest failed, if it did.
final class WasmGuestState {
    let view: CNode
    var memory: Memory?
    var input: Input?
    var failure: String?
    /// Shape and parameters set for the next `send` (set_shape, set_int, ...), then cleared.
    var staged = ApusNode.Metadata()

    /// Sets parameter `key` of the next send, replacing an earlier value.
    func stage(_ key: String, _ value: Parameter) {
        staged.parameters.removeAll { $0.key == key }
        staged.parameters.append((key, value))
    }

    init(view: CNode) {
        self.view = view
    }

    /// `count` bytes of guest memory at `offset`, or nil (and the reason noted) when out of bounds.
    func bytes(_ offset: Value, _ count: Value) -> UnsafeRawBufferPointer? {
        guard let memory, case .i32(let start) = offset, case .i32(let length) = count else { return nil }
        guard UInt64(start) + UInt64(length) <= UInt64(memory.byteCount) else {
            failure = "passed memory outside its linear memory (\(start)+\(length) of \(memory.byteCount) bytes)"
            return nil
        }
        return memory.withUnsafeBufferPointer(offset: UInt(start), count: Int(length)) { $0 }
    }

    func text(_ offset: Value, _ count: Value) -> String? {
        bytes(offset, count).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Copies as much of `source` as `capacity` bytes hold to guest memory at `offset`; false
    /// (and the reason noted) when that place is outside the guest's memory.
    func write(_ source: [UInt8], to offset: Value, capacity: UInt32) -> Bool {
        guard let memory, bytes(offset, .i32(capacity)) != nil, case .i32(let start) = offset else { return false }
        memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: min(source.count, Int(capacity))) {
            $0.copyBytes(from: source[0..<$0.count])
        }
        return true
    }

    /// A list parameter of kind `kind` as guest bytes: little-endian int64s or f64s, one byte per
    /// bool, or NUL-terminated strings back to back; nil when it is of another kind.
    static func listBytes(_ parameter: Parameter, as kind: String) -> (bytes: [UInt8], width: Int)? {
        switch (parameter, kind) {
        case (.ints(let values), "ints"): (values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }, 8)
        case (.floats(let values), "floats"): (values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }, 8)
        case (.bools(let values), "bools"): (values.map { $0 ? 1 : 0 }, 1)
        case (.strings(let values), "strings"): (values.flatMap { Array($0.utf8) + [0] }, 1)
        default: nil
        }
    }

    /// The list parameter of kind `kind` ("ints", "floats", "bools" or "strings") that `count`
    /// elements at `data` make, laid out as `listBytes` says (strings: `count` bytes).
    func list(_ kind: String, _ data: Value, _ count: Value) -> Parameter? {
        guard case .i32(let elements) = count else { return nil }
        let width: UInt64 = kind == "ints" || kind == "floats" ? 8 : 1
        guard UInt64(elements) * width <= UInt32.max, let raw = bytes(data, .i32(elements * UInt32(width))) else { return nil }
        let words =
            width == 8 ? (0..<Int(elements)).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) } : []
        switch kind {
        case "ints": return .ints(words.map { Int64(bitPattern: $0) })
        case "floats": return .floats(words.map { Double(bitPattern: $0) })
        case "bools": return .bools(raw.map { $0 != 0 })
        default:
            if raw.isEmpty { return .strings([]) }
            var texts = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if raw.last == 0 { texts.removeLast() }
            return .strings(texts)
        }
    }

    /// send and send_forward: `arguments` are output, its length, data, its length.
    func send(_ arguments: [Value], metadata: ApusNode.Metadata) -> Value {
        let failed = Value.i32(UInt32(bitPattern: APUS_ERROR_INVALID_ARGUMENT.rawValue))
        guard let name = bytes(arguments[0], arguments[1]), let data = bytes(arguments[2], arguments[3]) else { return failed }
        guard let index = view.outputIndex(utf8: name) else {
            failure = "sent on output '\(String(decoding: name, as: UTF8.self))', which it does not declare"
            return .i32(UInt32(bitPattern: APUS_ERROR_UNKNOWN_OUTPUT.rawValue))
        }
        let output = view.node.outputIDs[index]
        do {
            try view.node.send(output: index, data, metadata: metadata)
        } catch {
            failure = "cannot send on '\(output)': \(error)"
            return failed
        }
        return .i32(0)
    }
}

final class WasmOperator: OperatorInstance {
    /// What a guest may import: these, from module "apus", and nothing else.
    static let granted = [
        "send", "send_forward", "log", "fail", "input_id", "element_type", "timestamp", "shape", "param_int", "param_float",
        "param_string", "param_bool", "param_ints", "param_floats", "param_bools", "param_strings", "set_shape", "set_int", "set_float",
        "set_string", "set_bool", "set_ints", "set_floats", "set_bools", "set_strings",
    ]

    let path: String
    let fuelPerEvent: UInt64
    let memoryLimit: UInt64
    /// Parsed and checked once; instantiated again for a restart.
    let module: Module
    let state: WasmGuestState
    private(set) var store: Store
    private(set) var instance: Instance
    private(set) var onEvent: Function
    private(set) var allocate: Function
    private(set) var memory: Memory
    /// Where inputs are copied in the guest's memory, and how much it holds.
    var inputBuffer: (address: UInt32, capacity: Int)?

    /// One instance of the module with its store: what a restart makes anew.
    struct Live {
        let store: Store
        let instance: Instance
        let onEvent: Function
        let allocate: Function
        let memory: Memory
    }

    init(path: String, view: CNode, fuelPerEvent: UInt64, memoryLimit: UInt64) throws(OperatorLoadError) {
        self.path = path
        self.fuelPerEvent = fuelPerEvent
        self.memoryLimit = memoryLimit
        do {
            module = try parseWasm(bytes: try Self.read(path))
        } catch let error as OperatorLoadError {
            throw error
        } catch {
            throw OperatorLoadError(description: "'\(path)' is not a valid Wasm module: \(error)")
        }
        for wanted in module.imports where wanted.module != "apus" || !Self.granted.contains(wanted.name) {
            throw OperatorLoadError(
                description: "'\(path)' imports \(wanted.module).\(wanted.name), which is not granted (a guest may import only "
                    + Self.granted.map { "apus.\($0)" }.joined(separator: ", ") + ")")
        }
        state = WasmGuestState(view: view)
        let live = try Self.instantiate(module, path: path, state: state, memoryLimit: memoryLimit)
        (store, instance, onEvent, allocate, memory) = (live.store, live.instance, live.onEvent, live.allocate, live.memory)
        try start()
    }

    /// A fresh store and instance of `module`, its exports found.
    static func instantiate(_ module: Module, path: String, state: WasmGuestState, memoryLimit: UInt64) throws(OperatorLoadError) -> Live {
        let store = Store(engine: Engine(configuration: EngineConfiguration(fuelMetering: true)))
        store.resourceLimiter = WasmMemoryCap(bytes: Int(clamping: memoryLimit))
        let instance: Instance
        do {
            instance = try module.instantiate(store: store, imports: imports(store: store, state: state))
        } catch {
            throw OperatorLoadError(description: "'\(path)' cannot be instantiated: \(error)")
        }
        guard let onEvent = instance.exports[function: "apus_on_event"] else {
            throw OperatorLoadError(description: "'\(path)' does not export apus_on_event (see include/apus_wasm.h)")
        }
        guard let allocate = instance.exports[function: "apus_alloc"] else {
            throw OperatorLoadError(description: "'\(path)' does not export apus_alloc (see include/apus_wasm.h)")
        }
        guard let memory = instance.exports[memory: "memory"] else {
            throw OperatorLoadError(description: "'\(path)' does not export its memory")
        }
        return Live(store: store, instance: instance, onEvent: onEvent, allocate: allocate, memory: memory)
    }

    /// Points the host functions at the instance and runs its apus_init.
    private func start() throws(OperatorLoadError) {
        state.memory = memory
        inputBuffer = nil
        if let initialize = instance.exports[function: "apus_init"] {
            switch call(initialize, []) {
            case .proceed: break
            case .failed(let reason): throw OperatorLoadError(description: "its apus_init failed: \(reason)")
            default: throw OperatorLoadError(description: "its apus_init asked to stop")
            }
        }
    }

    /// Throws the failed instance away and starts a fresh one of the same module.
    func restart() throws(OperatorLoadError) {
        let live = try Self.instantiate(module, path: path, state: state, memoryLimit: memoryLimit)
        (store, instance, onEvent, allocate, memory) = (live.store, live.instance, live.onEvent, live.allocate, live.memory)
        try start()
    }

    static func read(_ path: String) throws(OperatorLoadError) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw OperatorLoadError(description: "cannot read '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes
    }

    /// The functions of module "apus" (include/apus_wasm.h).
    static func imports(store: Store, state: WasmGuestState) -> Imports {
        var imports = Imports()
        func status(_ code: apus_status_t) -> Value { .i32(UInt32(bitPattern: code.rawValue)) }
        let failed = status(APUS_ERROR_INVALID_ARGUMENT)
        // send(output, output_len, data, data_len, element_type) -> status
        imports.define(
            module: "apus", name: "send",
            Function(store: store, parameters: [.i32, .i32, .i32, .i32, .i32], results: [.i32]) { _, arguments in
                guard case .i32(let typeCode) = arguments[4] else { return [failed] }
                guard typeCode <= UInt8.max, let type = ElementType(rawValue: UInt8(typeCode)) else {
                    state.failure = "sent element type \(typeCode), which is not an apus_type_t"
                    return [failed]
                }
                var metadata = state.staged
                state.staged = ApusNode.Metadata()
                metadata.elementType = type
                return [state.send(arguments, metadata: metadata)]
            })
        // send_forward(output, output_len, data, data_len) -> status: with the input's metadata
        imports.define(
            module: "apus", name: "send_forward",
            Function(store: store, parameters: [.i32, .i32, .i32, .i32], results: [.i32]) { _, arguments in
                guard let input = state.input else {
                    state.failure = "called send_forward outside apus_on_event"
                    return [failed]
                }
                return [state.send(arguments, metadata: input.metadata)]
            })
        // shape(dims, capacity) -> rank: the input's dimensions (uint64 each), up to capacity of them
        imports.define(
            module: "apus", name: "shape",
            Function(store: store, parameters: [.i32, .i32], results: [.i32]) { _, arguments in
                let shape = state.input?.shape ?? []
                guard case .i32(let capacity) = arguments[1] else { return [failed] }
                let count = min(Int(capacity), shape.count)
                guard let memory = state.memory, state.bytes(arguments[0], .i32(UInt32(count * 8))) != nil,
                    case .i32(let start) = arguments[0]
                else { return [failed] }
                memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: count * 8) { buffer in
                    for index in 0..<count { buffer.storeBytes(of: shape[index].littleEndian, toByteOffset: index * 8, as: UInt64.self) }
                }
                return [.i32(UInt32(shape.count))]
            })
        // set_shape(dims, rank), set_int(key, key_len, value), set_float(...), set_string(key, key_len, text, text_len):
        // staged for the next send
        imports.define(
            module: "apus", name: "set_shape",
            Function(store: store, parameters: [.i32, .i32], results: [.i32]) { _, arguments in
                guard case .i32(let rank) = arguments[1], rank <= 32, let dims = state.bytes(arguments[0], .i32(rank * 8)) else {
                    return [failed]
                }
                state.staged.shape = (0..<Int(rank)).map {
                    UInt64(littleEndian: dims.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))
                }
                return [.i32(0)]
            })
        imports.define(
            module: "apus", name: "set_int",
            Function(store: store, parameters: [.i32, .i32, .i64], results: [.i32]) { _, arguments in
                guard let key = state.text(arguments[0], arguments[1]), case .i64(let value) = arguments[2] else { return [failed] }
                state.stage(key, .int(Int64(bitPattern: value)))
                return [.i32(0)]
            })
        imports.define(
            module: "apus", name: "set_float",
            Function(store: store, parameters: [.i32, .i32, .f64], results: [.i32]) { _, arguments in
                guard let key = state.text(arguments[0], arguments[1]), case .f64(let bits) = arguments[2] else { return [failed] }
                state.stage(key, .float(Double(bitPattern: bits)))
                return [.i32(0)]
            })
        imports.define(
            module: "apus", name: "set_string",
            Function(store: store, parameters: [.i32, .i32, .i32, .i32], results: [.i32]) { _, arguments in
                guard let key = state.text(arguments[0], arguments[1]), let text = state.text(arguments[2], arguments[3]) else {
                    return [failed]
                }
                state.stage(key, .string(text))
                return [.i32(0)]
            })
        // param_string(key, key_len, buffer, capacity) -> the text's length (copied up to capacity), or a status
        imports.define(
            module: "apus", name: "param_string",
            Function(store: store, parameters: [.i32, .i32, .i32, .i32], results: [.i32]) { _, arguments in
                guard let key = state.text(arguments[0], arguments[1]), case .i32(let capacity) = arguments[3] else { return [failed] }
                guard let parameter = state.input?[parameter: key] else { return [status(APUS_ERROR_NOT_FOUND)] }
                guard case .string(let text) = parameter else { return [status(APUS_ERROR_WRONG_TYPE)] }
                let utf8 = Array(text.utf8)
                return [state.write(utf8, to: arguments[2], capacity: capacity) ? .i32(UInt32(utf8.count)) : failed]
            })
        // param_int(key, key_len, out) -> status; param_float likewise (an f64), param_bool (an i32)
        for (name, width) in [("param_int", 8), ("param_float", 8), ("param_bool", 4)] {
            imports.define(
                module: "apus", name: name,
                Function(store: store, parameters: [.i32, .i32, .i32], results: [.i32]) { _, arguments in
                    guard let key = state.text(arguments[0], arguments[1]) else { return [failed] }
                    let bits: UInt64
                    switch (state.input?[parameter: key], name) {
                    case (.int(let value)?, "param_int"): bits = UInt64(bitPattern: value)
                    case (.float(let value)?, "param_float"): bits = value.bitPattern
                    case (.bool(let value)?, "param_bool"): bits = value ? 1 : 0
                    case (nil, _): return [status(APUS_ERROR_NOT_FOUND)]
                    default: return [status(APUS_ERROR_WRONG_TYPE)]
                    }
                    let written = withUnsafeBytes(of: bits.littleEndian) { Array($0.prefix(width)) }
                    return [state.write(written, to: arguments[2], capacity: UInt32(width)) ? .i32(0) : failed]
                })
        }
        // param_ints(key, key_len, values, capacity) -> the list's length (copied up to capacity
        // elements), or a status; param_floats, param_bools and param_strings (capacity in bytes) likewise
        for kind in ["ints", "floats", "bools", "strings"] {
            imports.define(
                module: "apus", name: "param_" + kind,
                Function(store: store, parameters: [.i32, .i32, .i32, .i32], results: [.i32]) { _, arguments in
                    guard let key = state.text(arguments[0], arguments[1]), case .i32(let capacity) = arguments[3] else { return [failed] }
                    guard let parameter = state.input?[parameter: key] else { return [status(APUS_ERROR_NOT_FOUND)] }
                    guard let (bytes, width) = WasmGuestState.listBytes(parameter, as: kind) else {
                        return [status(APUS_ERROR_WRONG_TYPE)]
                    }
                    guard UInt64(capacity) * UInt64(width) <= UInt32.max,
                        state.write(bytes, to: arguments[2], capacity: capacity * UInt32(width))
                    else { return [failed] }
                    return [.i32(UInt32(clamping: bytes.count / width))]
                })
            // set_ints(key, key_len, values, count), and the same for floats, bools and strings (length in bytes)
            imports.define(
                module: "apus", name: "set_" + kind,
                Function(store: store, parameters: [.i32, .i32, .i32, .i32], results: [.i32]) { _, arguments in
                    guard let key = state.text(arguments[0], arguments[1]), let list = state.list(kind, arguments[2], arguments[3]) else {
                        return [failed]
                    }
                    state.stage(key, list)
                    return [.i32(0)]
                })
        }
        imports.define(
            module: "apus", name: "set_bool",
            Function(store: store, parameters: [.i32, .i32, .i32], results: [.i32]) { _, arguments in
                guard let key = state.text(arguments[0], arguments[1]), case .i32(let value) = arguments[2] else { return [failed] }
                state.stage(key, .bool(value != 0))
                return [.i32(0)]
            })
        imports.define(
            module: "apus", name: "log",
            Function(store: store, parameters: [.i32, .i32]) { _, arguments in
                if let line = state.text(arguments[0], arguments[1]) {
                    writeLine(2, "\(String(cString: state.view.id[0])): \(line)")
                }
                return []
            })
        imports.define(
            module: "apus", name: "fail",
            Function(store: store, parameters: [.i32, .i32]) { _, arguments in
                if let reason = state.text(arguments[0], arguments[1]) { state.failure = reason }
                return []
            })
        // input_id(buffer, capacity) -> the id's length (copied up to capacity)
        imports.define(
            module: "apus", name: "input_id",
            Function(store: store, parameters: [.i32, .i32], results: [.i32]) { _, arguments in
                guard let input = state.input, let memory = state.memory, case .i32(let start) = arguments[0],
                    case .i32(let capacity) = arguments[1], UInt64(start) + UInt64(capacity) <= UInt64(memory.byteCount)
                else { return [failed] }
                let id = Array(String(cString: state.view.eventIDs[input.index]).utf8)
                memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: Int(min(UInt32(id.count), capacity))) {
                    $0.copyBytes(from: id[0..<$0.count])
                }
                return [.i32(UInt32(id.count))]
            })
        imports.define(
            module: "apus", name: "element_type",
            Function(store: store, parameters: [], results: [.i32]) { _, _ in
                [.i32(UInt32(state.input?.elementType.rawValue ?? 0))]
            })
        imports.define(
            module: "apus", name: "timestamp",
            Function(store: store, parameters: [], results: [.i64]) { _, _ in
                [.i64(state.input?.timestamp ?? 0)]
            })
        return imports
    }

    /// Calls a guest function with a fresh fuel budget; a trap, or fuel or memory running out,
    /// is this operator's failure.
    func call(_ function: Function, _ arguments: [Value]) -> OperatorOutcome {
        store.fuel = Fuel(remaining: fuelPerEvent)
        state.failure = nil
        let results: [Value]
        do {
            results = try function.invoke(arguments)
        } catch {
            var reason = "\(error)"
            if reason.contains("out of fuel") { return .failed("ran out of fuel (\(fuelPerEvent) per event): an endless loop?") }
            if reason.hasPrefix("Trap: ") { reason.removeFirst("Trap: ".count) }
            return .failed("trapped: \(reason)")
        }
        if let failure = state.failure { return .failed(failure) }
        guard case .i32(let status)? = results.first else { return .proceed }
        switch status {
        case 0: return .proceed
        case 1: return .stop
        case 2: return .stopAll
        default: return .failed(state.failure ?? "apus_on_event returned \(Int32(bitPattern: status))")
        }
    }

    func handle(_ event: Event) -> OperatorOutcome {
        // Guests get their inputs; STOP ends them (apus_drop), other events are the runtime's.
        guard case .input(let input) = event else { return .proceed }
        let data = input.bytes
        guard data.count <= Int(UInt32.max) else { return .failed("an input of \(data.count) bytes does not fit a Wasm memory") }
        // The buffer apus_alloc gave stays the input buffer for inputs up to its size; it is asked
        // again only for a larger one (include/apus_wasm.h).
        if inputBuffer == nil || data.count > inputBuffer!.capacity {
            switch allocation(data.count) {
            case .success(let address): inputBuffer = (address, data.count)
            case .failure(let failure): return .failed(failure.reason)
            }
        }
        let place = inputBuffer!.address
        if !data.isEmpty {
            memory.withUnsafeMutableBufferPointer(offset: UInt(place), count: data.count) { $0.copyMemory(from: data) }
        }
        state.input = input
        defer { state.input = nil }
        return call(onEvent, [.i32(place), .i32(UInt32(data.count))])
    }

    struct AllocationFailure: Error {
        let reason: String
    }

    /// Room for `count` bytes in the guest, from its apus_alloc, checked against its memory.
    func allocation(_ count: Int) -> Result<UInt32, AllocationFailure> {
        store.fuel = Fuel(remaining: fuelPerEvent)
        do {
            guard case .i32(let address)? = try allocate.invoke([.i32(UInt32(count))]).first else {
                return .failure(AllocationFailure(reason: "apus_alloc returned no address"))
            }
            guard UInt64(address) + UInt64(count) <= UInt64(memory.byteCount), address != 0 || count == 0 else {
                return .failure(AllocationFailure(reason: "apus_alloc(\(count)) gave no room (address \(address))"))
            }
            return .success(address)
        } catch {
            return .failure(AllocationFailure(reason: "apus_alloc trapped: \(error)"))
        }
    }

    func drop() {
        if let dropFunction = instance.exports[function: "apus_drop"] {
            if case .failed(let reason) = call(dropFunction, []) {
                writeLine(2, "apus: operator '\(String(cString: state.view.id[0]))': apus_drop failed: \(reason)")
            }
        }
    }
}
