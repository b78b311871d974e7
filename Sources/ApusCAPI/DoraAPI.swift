// dora-rs's C node API (include/dora/node_api.h) over the Apus node: a dora context is an
// apus_node_t handle and a dora event an apus_event_t handle, so both APIs can be mixed.
// dora's functions have no error channel besides NULL / -1, so failures are also written to stderr.
@_spi(CAPI) import ApusNode
import ApusTransport
import CApusHeader
import Glibc

/// Runs a dora function: on failure records the error (for apus_last_error), tells stderr, and
/// returns `fallback`.
private func dora<Value>(_ function: StaticString, fallback: Value, _ body: () throws(APIError) -> Value) -> Value {
    do {
        return try body()
    } catch {
        record(error, in: function)
        writeLine(2, "apus: \(function): \(error.message)")
        return fallback
    }
}

private func handle(_ pointer: UnsafeMutableRawPointer?) -> OpaquePointer? {
    pointer.map(OpaquePointer.init)
}

/// `length` bytes at `pointer`, NULL allowed only when empty.
private func bytes(_ pointer: UnsafePointer<CChar>?, _ length: Int, _ name: String) throws(APIError) -> UnsafeRawBufferPointer {
    guard length >= 0 else { throw .invalidArgument("\(name) has length \(UInt(bitPattern: length)), more than memory can hold") }
    guard pointer != nil || length == 0 else { throw .invalidArgument("\(name) is NULL but its length is \(length)") }
    return UnsafeRawBufferPointer(start: pointer, count: length)
}

/// `length` bytes at `pointer` as UTF-8 text, refused when invalid.
private func text(_ pointer: UnsafePointer<CChar>?, _ length: Int, _ name: String) throws(APIError) -> String {
    guard let text = String(validating: try bytes(pointer, length, name), as: UTF8.self) else {
        throw .invalidArgument("\(name) is not valid UTF-8")
    }
    return text
}

@c @implementation
public func init_dora_context_from_env() -> UnsafeMutableRawPointer? {
    dora("init_dora_context_from_env", fallback: nil) { () throws(APIError) -> UnsafeMutableRawPointer? in
        let node = try nodeCall { () throws(NodeError) in try Node() }
        return UnsafeMutableRawPointer(try register(CNode(node), .node))
    }
}

@c @implementation
public func free_dora_context(_ context: UnsafeMutableRawPointer?) {
    guard context != nil else { return }  // like free(NULL)
    dora("free_dora_context", fallback: ()) { () throws(APIError) in _ = try take(handle(context), .node, as: CNode.self) }
}

@c @implementation
public func dora_next_event(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    dora("dora_next_event", fallback: nil) { () throws(APIError) -> UnsafeMutableRawPointer? in
        let owner = try resolve(handle(context), .node, as: CNode.self)
        let event = try nodeCall { () throws(NodeError) in try owner.node.next() }
        // nil: the stream has ended (STOP was delivered before), which dora signals with NULL.
        guard let event else { return nil }
        return UnsafeMutableRawPointer(try register(CEvent(owner: owner, event: event), .event))
    }
}

@c @implementation
public func free_dora_event(_ event: UnsafeMutableRawPointer?) {
    guard event != nil else { return }  // like free(NULL)
    dora("free_dora_event", fallback: ()) { () throws(APIError) in _ = try take(handle(event), .event, as: CEvent.self) }
}

@c @implementation
public func read_dora_event_type(_ event: UnsafeMutableRawPointer?) -> DoraEventType {
    dora("read_dora_event_type", fallback: DoraEventType_Unknown) { () throws(APIError) in
        switch try resolve(handle(event), .event, as: CEvent.self).type {
        case APUS_EVENT_STOP: DoraEventType_Stop
        case APUS_EVENT_INPUT: DoraEventType_Input
        case APUS_EVENT_INPUT_CLOSED: DoraEventType_InputClosed
        case APUS_EVENT_ERROR: DoraEventType_Error
        default: DoraEventType_Unknown  // NODE_FAILED: dora 1.x delivers its NodeFailed as Unknown to C
        }
    }
}

/// dora's `read_dora_input_*(event, &ptr, &len)`: NULL and 0 unless the event is an INPUT, whose
/// `part` is then handed out (valid until the event is freed).
private func readInput(
    _ function: StaticString, _ event: UnsafeMutableRawPointer?, _ outPointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ outLength: UnsafeMutablePointer<Int>?, _ part: (CEvent, Input) -> (UnsafeMutablePointer<CChar>, Int)
) {
    outPointer?.pointee = nil
    outLength?.pointee = 0
    dora(function, fallback: ()) { () throws(APIError) in
        let outPointer = try requireOut(outPointer, "out_ptr")
        let outLength = try requireOut(outLength, "out_len")
        let owner = try resolve(handle(event), .event, as: CEvent.self)
        guard case .input(let input) = owner.event else { return }
        (outPointer.pointee, outLength.pointee) = part(owner, input)
    }
}

@c @implementation
public func read_dora_input_id(
    _ event: UnsafeMutableRawPointer?, _ outPointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ outLength: UnsafeMutablePointer<Int>?
) {
    readInput("read_dora_input_id", event, outPointer, outLength) { owner, _ in
        (UnsafeMutablePointer(mutating: owner.id), strlen(owner.id))
    }
}

/// A valid address for empty data, so nodes may pass it to memcpy and friends.
nonisolated(unsafe) private let emptyData = UnsafeMutablePointer<CChar>.allocate(capacity: 1)

@c @implementation
public func read_dora_input_data(
    _ event: UnsafeMutableRawPointer?, _ outPointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ outLength: UnsafeMutablePointer<Int>?
) {
    readInput("read_dora_input_data", event, outPointer, outLength) { _, input in
        let bytes = input.bytes
        return (bytes.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: CChar.self)) } ?? emptyData, bytes.count)
    }
}

@c @implementation
public func read_dora_input_timestamp(_ event: UnsafeMutableRawPointer?) -> UInt64 {
    dora("read_dora_input_timestamp", fallback: 0) { () throws(APIError) in
        guard case .input(let input) = try resolve(handle(event), .event, as: CEvent.self).event else { return 0 }
        return input.timestamp
    }
}

@c @implementation
public func dora_send_output(
    _ context: UnsafeMutableRawPointer?, _ idPointer: UnsafePointer<CChar>?, _ idLength: Int, _ dataPointer: UnsafePointer<CChar>?,
    _ dataLength: Int
) -> Int32 {
    dora("dora_send_output", fallback: -1) { () throws(APIError) -> Int32 in
        let owner = try resolve(handle(context), .node, as: CNode.self)
        let id = try bytes(idPointer, idLength, "the output id")
        let data = try bytes(dataPointer, dataLength, "the data")
        do throws(NodeError) {
            let index = try owner.node.outputIndex(utf8: id)
            try owner.node.send(output: index, data, metadata: Metadata())
        } catch {
            throw APIError(error)
        }
        return 0
    }
}

@c @implementation
public func dora_log(
    _ context: UnsafeMutableRawPointer?, _ levelPointer: UnsafePointer<CChar>?, _ levelLength: Int, _ messagePointer: UnsafePointer<CChar>?,
    _ messageLength: Int
) -> Int32 {
    dora("dora_log", fallback: -1) { () throws(APIError) -> Int32 in
        _ = try resolve(handle(context), .node, as: CNode.self)
        let level = try text(levelPointer, levelLength, "the level")
        let label: String
        switch level.lowercased() {
        case "error": label = "ERROR"
        case "warn", "warning": label = "WARN "
        case "info": label = "INFO "
        case "debug": label = "DEBUG"
        case "trace": label = "TRACE"
        default: throw .invalidArgument("log level '\(level)' is not one of error, warn, info, debug, trace")
        }
        writeLine(2, label + " " + (try text(messagePointer, messageLength, "the message")))
        return 0
    }
}
