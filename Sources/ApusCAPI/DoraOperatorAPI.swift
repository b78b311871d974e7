// dora-rs's C operator ABI (include/dora/operator_api.h): the runtime's side, and the helpers
// an operator calls. An Input_t is an apus_event_t handle, and a SendOutput_t carries the
// operator's node handle, so both are checked on every use.
@_spi(CAPI) import ApusNode
import CApusHeader
import ApusTransport
import CDoraOperatorHeader
import Glibc

typealias DoraInit = @convention(c) () -> DoraInitResult_t
typealias DoraDrop = @convention(c) (UnsafeMutableRawPointer?) -> DoraResult_t
typealias DoraOnEventFunction =
    @convention(c) (
        UnsafeMutablePointer<RawEvent_t>?, UnsafePointer<SendOutput_t>?, UnsafeMutableRawPointer?
    ) -> OnEventResult_t

/// An operator with dora's ABI.
final class DoraABIOperator: OperatorInstance {
    let library: UnsafeMutableRawPointer
    let view: CNode
    let onEvent: DoraOnEventFunction
    let dropFunction: DoraDrop
    let context: UnsafeMutableRawPointer?
    var sendOutput: SendOutput_t

    init(
        library: UnsafeMutableRawPointer, view: CNode, handle: OpaquePointer, initialize: UnsafeMutableRawPointer,
        onEvent: UnsafeMutableRawPointer, drop: UnsafeMutableRawPointer
    ) throws(OperatorLoadError) {
        self.library = library
        self.view = view
        self.onEvent = unsafeBitCast(onEvent, to: DoraOnEventFunction.self)
        self.dropFunction = unsafeBitCast(drop, to: DoraDrop.self)
        let result = unsafeBitCast(initialize, to: DoraInit.self)()
        if let error = takeMessage(result.result.error) {
            dlclose(library)
            throw OperatorLoadError(description: "dora_init_operator failed: \(error)")
        }
        context = result.operator_context
        sendOutput = SendOutput_t(
            send_output: ArcDynFn1_DoraResult_Output_t(env_ptr: UnsafeMutableRawPointer(handle), call: nil, release: nil, retain: nil))
    }

    func handle(_ event: Event) -> OperatorOutcome {
        var raw = RawEvent_t(input: nil, input_closed: emptyVec, stop: false, error: emptyVec)
        var inputHandle: OpaquePointer?
        var owned: UnsafeMutablePointer<CChar>?
        switch event {
        case .input:
            inputHandle = HandleTable.shared.insert(CEvent(owner: view, event: event), kind: .event)
            guard inputHandle != nil else { return .failed("too many live handles to pass it an event") }
            raw.input = inputHandle
        case .inputClosed:
            owned = strdup(String(cString: CEvent(owner: view, event: event).id))
            raw.input_closed = vec(owned)
        case .stop:
            raw.stop = true
        case .nodeFailed, .error:
            owned = strdup(String(cString: CEvent(owner: view, event: event).message))
            raw.error = vec(owned)
        }
        let result = withUnsafePointer(to: &sendOutput) { onEvent(&raw, $0, context) }
        if let inputHandle { _ = HandleTable.shared.remove(inputHandle, kind: .event) }
        free(owned)
        if let error = takeMessage(result.result.error) { return .failed(error) }
        switch result.status {
        case UInt8(DORA_STATUS_CONTINUE.rawValue): return .proceed
        case UInt8(DORA_STATUS_STOP.rawValue): return .stop
        case UInt8(DORA_STATUS_STOP_ALL.rawValue): return .stopAll
        default: return .failed("dora_on_event returned status \(result.status), which is not a DoraStatus")
        }
    }

    func drop() {
        if let error = takeMessage(dropFunction(context).error) {
            writeLine(2, "apus: operator '\(String(cString: view.id[0]))': dora_drop_operator failed: \(error)")
        }
        dlclose(library)
    }
}

private var emptyVec: Vec_uint8_t { Vec_uint8_t(ptr: nil, len: 0, cap: 0) }

private func vec(_ text: UnsafeMutablePointer<CChar>?) -> Vec_uint8_t {
    guard let text else { return emptyVec }
    let length = strlen(text)
    return Vec_uint8_t(ptr: UnsafeMutableRawPointer(text).assumingMemoryBound(to: UInt8.self), len: length, cap: length + 1)
}

/// The text of a DoraResult_t's error, freeing it (it was allocated with malloc); nil on success.
private func takeMessage(_ error: Vec_uint8_t) -> String? {
    guard let pointer = error.ptr else { return nil }
    let text = String(decoding: UnsafeBufferPointer(start: pointer, count: error.len), as: UTF8.self)
    free(pointer)
    return text.isEmpty ? "(no message)" : text
}

/// A DoraResult_t carrying `message` (malloc'd, as dora's callers free it).
private func failure(_ message: String) -> DoraResult_t {
    let copy = strdup(message)
    return DoraResult_t(error: vec(copy))
}

private func inputEvent(_ input: OpaquePointer?, _ function: StaticString) -> CEvent? {
    do {
        let event = try resolve(input, .event, as: CEvent.self)
        _ = try event.requireInput()
        return event
    } catch {
        record(error, in: function)
        writeLine(2, "apus: \(function): \(error.message)")
        return nil
    }
}

@c @implementation
public func dora_read_input_id(_ input: OpaquePointer?) -> UnsafeMutablePointer<CChar>? {
    inputEvent(input, "dora_read_input_id").map { strdup($0.id) }
}

@c @implementation
public func dora_read_data(_ input: OpaquePointer?) -> Vec_uint8_t {
    guard let event = inputEvent(input, "dora_read_data"), case .input(let received) = event.event else { return emptyVec }
    let bytes = received.bytes
    // A copy the operator owns until dora_free_data, as in dora; never NULL, also when empty.
    let copy = malloc(max(bytes.count, 1))!
    if let base = bytes.baseAddress { copy.copyMemory(from: base, byteCount: bytes.count) }
    return Vec_uint8_t(ptr: copy.assumingMemoryBound(to: UInt8.self), len: bytes.count, cap: max(bytes.count, 1))
}

@c @implementation
public func dora_free_data(_ data: Vec_uint8_t) {
    free(data.ptr)
}

@c @implementation
public func dora_free_input_id(_ inputID: UnsafeMutablePointer<CChar>?) {
    free(inputID)
}

@c @implementation
public func dora_send_operator_output(
    _ sendOutput: UnsafePointer<SendOutput_t>?, _ id: UnsafePointer<CChar>?, _ data: UnsafePointer<UInt8>?, _ length: Int
) -> DoraResult_t {
    do throws(APIError) {
        guard let sendOutput else { throw .invalidArgument("send_output is NULL") }
        let view = try resolve(OpaquePointer(sendOutput.pointee.send_output.env_ptr), .node, as: CNode.self)
        let index = try view.output(id)
        guard data != nil || length == 0 else { throw .invalidArgument("data is NULL but its length is \(length)") }
        try nodeCall { () throws(NodeError) in
            try view.node.send(output: index, UnsafeRawBufferPointer(start: data, count: length), metadata: ApusNode.Metadata())
        }
        return DoraResult_t(error: emptyVec)
    } catch {
        record(error, in: "dora_send_operator_output")
        return failure(error.message)
    }
}
