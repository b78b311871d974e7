// apus_node_*: joining the dataflow, receiving, sending, allocating and logging.
@_spi(CAPI) import ApusNode
import ApusTransport
import CApusHeader
import CApusSys
import Glibc
import Synchronization

/// A node as C holds it, with its ids kept as C strings for as long as anything uses the node.
/// An operator gets a view of its runtime node: its own ids, and its outputs mapped to the node's.
final class CNode {
    let node: Node
    let id: CStrings
    let inputs: CStrings
    let sources: CStrings
    let outputs: CStrings
    /// Per input of the node (by index), the id its events carry in this view.
    let eventIDs: CStrings
    /// An operator's view: its outputs' indices among the node's. nil for a node's own handle.
    let outputIndices: [Int]?
    /// What the operator gave `apus_operator_fail` last (an operator's view only).
    var failure: String?
    /// Blocks its output allocators handed out and that were neither sent nor freed, by address,
    /// and the allocators' handles by output (see AllocatorAPI.swift).
    let blocks = Mutex<[UInt: AllocatedBlock]>([:])
    let allocators = Mutex<[Int: UInt]>([:])

    init(_ node: Node) {
        self.node = node
        id = CStrings([node.id])
        inputs = CStrings(node.inputIDs)
        sources = CStrings(node.inputSources)
        outputs = CStrings(node.outputIDs)
        eventIDs = inputs
        outputIndices = nil
    }

    /// The view of operator `name`: `inputs` and `outputs` are its indices among the node's, and
    /// `local` turns a node's id into the operator's own.
    init(operator name: String, of node: Node, inputs: [Int], outputs: [Int], local: (String) -> String) {
        self.node = node
        id = CStrings(["\(node.id)/\(name)"])
        self.inputs = CStrings(inputs.map { local(node.inputIDs[$0]) })
        sources = CStrings(inputs.map { node.inputSources[$0] })
        self.outputs = CStrings(outputs.map { local(node.outputIDs[$0]) })
        eventIDs = CStrings(node.inputIDs.map(local))
        outputIndices = outputs
    }

    var isOperatorView: Bool { outputIndices != nil }

    /// The node's index of the output these UTF-8 bytes name in this view, compared in place; nil if none.
    func outputIndex(utf8 name: UnsafeRawBufferPointer) -> Int? {
        guard let outputIndices else { return try? node.outputIndex(utf8: name) }
        for position in 0..<outputs.count where strlen(outputs[position]) == name.count {
            if name.isEmpty || memcmp(outputs[position], name.baseAddress!, name.count) == 0 { return outputIndices[position] }
        }
        return nil
    }

    /// The node's index of the output named `name` (in this view).
    func output(_ name: UnsafePointer<CChar>?) throws(APIError) -> Int {
        let name = try requireString(name, "output")
        guard isOperatorView else { return try nodeCall { () throws(NodeError) in try node.outputIndex(cString: name) } }
        if let index = outputIndex(utf8: UnsafeRawBufferPointer(start: name, count: strlen(name))) { return index }
        let declared = (0..<outputs.count).map { "'\(String(cString: outputs[$0]))'" }.joined(separator: ", ")
        throw APIError(
            APUS_ERROR_UNKNOWN_OUTPUT,
            "operator '\(String(cString: id[0]))' has no output '\(String(cString: name))' (its outputs: \(declared.isEmpty ? "none" : declared))"
        )
    }
}

/// NUL-terminated copies of strings, freed with their owner.
final class CStrings {
    let pointers: [UnsafeMutablePointer<CChar>]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0)! }
    }

    subscript(index: Int) -> UnsafePointer<CChar> { UnsafePointer(pointers[index]) }

    var count: Int { pointers.count }

    deinit {
        for pointer in pointers { free(pointer) }
    }
}

/// An allocated sample, until it is sent or discarded.
final class CSample {
    let owner: CNode
    var sample: OutputSample<UInt8>?
    let data: UnsafeMutableRawPointer?
    let length: Int

    init(owner: CNode, sample: consuming OutputSample<UInt8>) {
        self.owner = owner
        data = UnsafeMutableRawPointer(sample.buffer.baseAddress)
        length = sample.byteCount
        self.sample = consume sample
    }
}

func nodeCall<Result: ~Copyable>(_ body: () throws(NodeError) -> Result) throws(APIError) -> Result {
    do {
        return try body()
    } catch {
        throw APIError(error)
    }
}

@c @implementation
public func apus_node_init_from_env() -> OpaquePointer? {
    value("apus_node_init_from_env", fallback: nil) { () throws(APIError) -> OpaquePointer? in
        let node = try nodeCall { () throws(NodeError) in try Node() }
        return try register(CNode(node), .node)
    }
}

@c @implementation
public func apus_node_free(_ node: OpaquePointer?) -> apus_status_t {
    guard node != nil else { return APUS_OK }
    return status("apus_node_free") { () throws(APIError) in
        if try resolve(node, .node, as: CNode.self).isOperatorView {
            throw .invalidArgument("an operator's node belongs to its runtime, which frees it after drop")
        }
        try take(node, .node, as: CNode.self).releaseAllocators()
    }
}

@c @implementation
public func apus_node_id(_ node: OpaquePointer?) -> UnsafePointer<CChar>? {
    value("apus_node_id", fallback: nil) { () throws(APIError) in try resolve(node, .node, as: CNode.self).id[0] }
}

@c @implementation
public func apus_node_input_count(_ node: OpaquePointer?) -> Int {
    value("apus_node_input_count", fallback: 0) { () throws(APIError) in try resolve(node, .node, as: CNode.self).inputs.count }
}

@c @implementation
public func apus_node_input_id(_ node: OpaquePointer?, _ index: Int) -> UnsafePointer<CChar>? {
    value("apus_node_input_id", fallback: nil) { () throws(APIError) in
        let inputs = try resolve(node, .node, as: CNode.self).inputs
        guard index >= 0, index < inputs.count else {
            throw .invalidArgument("input index \(UInt(bitPattern: index)) is out of range (\(inputs.count) inputs)")
        }
        return inputs[index]
    }
}

@c @implementation
public func apus_node_input_source(_ node: OpaquePointer?, _ index: Int) -> UnsafePointer<CChar>? {
    value("apus_node_input_source", fallback: nil) { () throws(APIError) in
        let sources = try resolve(node, .node, as: CNode.self).sources
        guard index >= 0, index < sources.count else {
            throw .invalidArgument("input index \(UInt(bitPattern: index)) is out of range (\(sources.count) inputs)")
        }
        return sources[index]
    }
}

@c @implementation
public func apus_node_output_count(_ node: OpaquePointer?) -> Int {
    value("apus_node_output_count", fallback: 0) { () throws(APIError) in try resolve(node, .node, as: CNode.self).outputs.count }
}

@c @implementation
public func apus_node_output_id(_ node: OpaquePointer?, _ index: Int) -> UnsafePointer<CChar>? {
    value("apus_node_output_id", fallback: nil) { () throws(APIError) in
        let outputs = try resolve(node, .node, as: CNode.self).outputs
        guard index >= 0, index < outputs.count else {
            throw .invalidArgument("output index \(UInt(bitPattern: index)) is out of range (\(outputs.count) outputs)")
        }
        return outputs[index]
    }
}

@c @implementation
public func apus_node_next(_ node: OpaquePointer?, _ timeoutNanoseconds: Int64) -> OpaquePointer? {
    value("apus_node_next", fallback: nil) { () throws(APIError) -> OpaquePointer? in
        let owner = try resolve(node, .node, as: CNode.self)
        if owner.isOperatorView { throw .invalidArgument("an operator gets its events through its on_event function") }
        let timeout: Duration? = timeoutNanoseconds < 0 ? nil : .nanoseconds(timeoutNanoseconds)
        guard let event = try nodeCall({ () throws(NodeError) in try owner.node.next(timeout: timeout) }) else {
            if owner.node.isFinished { throw APIError(APUS_FINISHED, "the event stream has ended (STOP was delivered)") }
            throw APIError(APUS_TIMEOUT, "no event within \(timeoutNanoseconds) ns")
        }
        return try register(CEvent(owner: owner, event: event), .event)
    }
}

@c @implementation
public func apus_node_next_many(
    _ node: OpaquePointer?, _ outEvents: UnsafeMutablePointer<OpaquePointer?>?, _ outTypes: UnsafeMutablePointer<apus_event_type_t>?,
    _ capacity: Int, _ timeoutNanoseconds: Int64
) -> Int {
    value("apus_node_next_many", fallback: 0) { () throws(APIError) -> Int in
        let owner = try resolve(node, .node, as: CNode.self)
        if owner.isOperatorView { throw .invalidArgument("an operator gets its events through its on_event function") }
        guard let outEvents else { throw .invalidArgument("out_events is NULL") }
        guard capacity > 0 else { throw .invalidArgument("capacity is 0") }
        var timeout: Duration? = timeoutNanoseconds < 0 ? nil : .nanoseconds(timeoutNanoseconds)
        var count = 0
        while count < capacity {
            // After the first event, only what is ready now: a later error waits for the next call.
            let event: Event?
            do throws(NodeError) {
                event = try owner.node.next(timeout: timeout)
            } catch {
                if count == 0 { throw APIError(error) }
                break
            }
            guard let event else { break }
            let wrapped = CEvent(owner: owner, event: event)
            outEvents[count] = try register(wrapped, .event)
            outTypes?[count] = wrapped.type
            count += 1
            timeout = .zero
        }
        if count == 0 {
            if owner.node.isFinished { throw APIError(APUS_FINISHED, "the event stream has ended (STOP was delivered)") }
            throw APIError(APUS_TIMEOUT, "no event within \(timeoutNanoseconds) ns")
        }
        return count
    }
}

@c @implementation
public func apus_node_send(
    _ node: OpaquePointer?, _ output: UnsafePointer<CChar>?, _ data: UnsafeRawPointer?, _ length: Int, _ metadata: OpaquePointer?
) -> apus_status_t {
    status("apus_node_send") { () throws(APIError) in
        let owner = try resolve(node, .node, as: CNode.self)
        let index = try owner.output(output)
        let length = try requireLength(length, "length")
        guard data != nil || length == 0 else { throw .invalidArgument("data is NULL but length is \(length)") }
        let metadata = try sendMetadata(metadata)
        try nodeCall { () throws(NodeError) in
            try owner.node.send(output: index, UnsafeRawBufferPointer(start: data, count: length), metadata: metadata)
        }
    }
}

@c @implementation
public func apus_node_send_many(
    _ node: OpaquePointer?, _ output: UnsafePointer<CChar>?, _ data: UnsafePointer<UnsafeRawPointer?>?, _ lengths: UnsafePointer<Int>?,
    _ metadata: UnsafePointer<OpaquePointer?>?, _ count: Int, _ outSent: UnsafeMutablePointer<Int>?
) -> apus_status_t {
    outSent?.pointee = 0
    return status("apus_node_send_many") { () throws(APIError) in
        let owner = try resolve(node, .node, as: CNode.self)
        let index = try owner.output(output)
        let count = try requireLength(count, "count")
        guard count > 0 else { return }
        guard let data else { throw .invalidArgument("data is NULL but count is \(count)") }
        guard let lengths else { throw .invalidArgument("lengths is NULL but count is \(count)") }
        for message in 0..<count {
            let length = lengths[message]
            if length < 0 { _ = try requireLength(length, "lengths[\(message)]") }  // the name only when needed
            guard data[message] != nil || length == 0 else {
                throw .invalidArgument("data[\(message)] is NULL but its length is \(length)")
            }
            let described = try sendMetadata(metadata?[message])
            try nodeCall { () throws(NodeError) in
                try owner.node.send(output: index, UnsafeRawBufferPointer(start: data[message], count: length), metadata: described)
            }
            outSent?.pointee = message + 1
        }
    }
}

@c @implementation
public func apus_node_allocate(
    _ node: OpaquePointer?, _ output: UnsafePointer<CChar>?, _ length: Int, _ outSample: UnsafeMutablePointer<OpaquePointer?>?
) -> apus_status_t {
    outSample?.pointee = nil
    return status("apus_node_allocate") { () throws(APIError) in
        let owner = try resolve(node, .node, as: CNode.self)
        let outSample = try requireOut(outSample, "out_sample")
        let index = try owner.output(output)
        let length = try requireLength(length, "length")
        let sample: OutputSample<UInt8> = try nodeCall { () throws(NodeError) in try owner.node.allocate(output: index, byteCount: length) }
        outSample.pointee = try register(CSample(owner: owner, sample: sample), .sample)
    }
}

@c @implementation
public func apus_sample_data(_ sample: OpaquePointer?) -> UnsafeMutableRawPointer? {
    value("apus_sample_data", fallback: nil) { () throws(APIError) in try resolve(sample, .sample, as: CSample.self).data }
}

@c @implementation
public func apus_sample_length(_ sample: OpaquePointer?) -> Int {
    value("apus_sample_length", fallback: 0) { () throws(APIError) in try resolve(sample, .sample, as: CSample.self).length }
}

@c @implementation
public func apus_node_send_sample(_ node: OpaquePointer?, _ sample: OpaquePointer?, _ metadata: OpaquePointer?) -> apus_status_t {
    status("apus_node_send_sample") { () throws(APIError) in
        // The sample handle is consumed whatever happens next; an unsent sample returns to its pool.
        let taken = try take(sample, .sample, as: CSample.self)
        let owner = try resolve(node, .node, as: CNode.self)
        guard taken.owner === owner else { throw .invalidArgument("the sample was allocated by another node") }
        let metadata = try sendMetadata(metadata)
        guard let reserved = taken.sample.take() else { return }
        do throws(NodeError) {
            try owner.node.send(reserved, as: metadata)
        } catch {
            throw APIError(error)
        }
    }
}

@c @implementation
public func apus_sample_discard(_ sample: OpaquePointer?) -> apus_status_t {
    freeHandle(sample, .sample, "apus_sample_discard")
}

@c @implementation
public func apus_node_close_output(_ node: OpaquePointer?, _ output: UnsafePointer<CChar>?) -> apus_status_t {
    status("apus_node_close_output") { () throws(APIError) in
        let owner = try resolve(node, .node, as: CNode.self)
        let index = try owner.output(output)
        try nodeCall { () throws(NodeError) in try owner.node.closeOutput(owner.node.outputIDs[index]) }
    }
}

@c @implementation
public func apus_node_log(_ node: OpaquePointer?, _ level: apus_log_level_t, _ message: UnsafePointer<CChar>?) -> apus_status_t {
    status("apus_node_log") { () throws(APIError) in
        _ = try resolve(node, .node, as: CNode.self)
        let message = try requireString(message, "message")
        let label: String
        switch level {
        case APUS_LOG_ERROR: label = "ERROR"
        case APUS_LOG_WARN: label = "WARN "
        case APUS_LOG_INFO: label = "INFO "
        case APUS_LOG_DEBUG: label = "DEBUG"
        default: throw .invalidArgument("log level \(level.rawValue) is not one of APUS_LOG_ERROR, _WARN, _INFO, _DEBUG")
        }
        writeLine(2, "\(label) " + String(decoding: UnsafeRawBufferPointer(start: message, count: strlen(message)), as: UTF8.self))
    }
}
