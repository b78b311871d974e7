// Operators in shared libraries, with Apus's C ABI (apus.h) or dora's (dora/operator_api.h).
@_spi(CAPI) import ApusNode
import CApusHeader
import Glibc

/// Loads `path` and finds its entry points: Apus's (`apus_operator_on_event`) if it has them,
/// else dora's (`dora_on_event`).
func loadSharedLibraryOperator(path: String, view: CNode, handle: OpaquePointer) throws(OperatorLoadError) -> OperatorInstance {
    guard let library = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
        throw OperatorLoadError(description: "cannot load '\(path)': \(String(cString: dlerror()))")
    }
    func symbol(_ name: String) -> UnsafeMutableRawPointer? { dlsym(library, name) }
    if let onEvent = symbol("apus_operator_on_event") {
        guard let initialize = symbol("apus_operator_init"), let drop = symbol("apus_operator_drop") else {
            dlclose(library)
            let missing = symbol("apus_operator_init") == nil ? "apus_operator_init" : "apus_operator_drop"
            throw OperatorLoadError(description: "'\(path)' defines apus_operator_on_event but not \(missing)")
        }
        return try ApusABIOperator(
            library: library, view: view, handle: handle,
            initialize: unsafeBitCast(initialize, to: apus_operator_init_fn.self),
            onEvent: unsafeBitCast(onEvent, to: apus_operator_on_event_fn.self),
            drop: unsafeBitCast(drop, to: apus_operator_drop_fn.self))
    }
    if let onEvent = symbol("dora_on_event") {
        guard let initialize = symbol("dora_init_operator"), let drop = symbol("dora_drop_operator") else {
            dlclose(library)
            let missing = symbol("dora_init_operator") == nil ? "dora_init_operator" : "dora_drop_operator"
            throw OperatorLoadError(description: "'\(path)' defines dora_on_event but not \(missing)")
        }
        return try DoraABIOperator(library: library, view: view, handle: handle, initialize: initialize, onEvent: onEvent, drop: drop)
    }
    dlclose(library)
    throw OperatorLoadError(
        description:
            "'\(path)' has no on_event function: it defines neither apus_operator_on_event (apus.h) nor dora_on_event (dora/operator_api.h)"
    )
}

/// An operator with Apus's ABI: it gets its view of the node and each event as checked handles.
final class ApusABIOperator: OperatorInstance {
    let library: UnsafeMutableRawPointer
    let view: CNode
    let handle: OpaquePointer
    let onEvent: apus_operator_on_event_fn
    let dropFunction: apus_operator_drop_fn
    var state: UnsafeMutableRawPointer?
    /// The event object lent to on_event, and its handle.
    var lent: (CEvent, OpaquePointer)?

    init(
        library: UnsafeMutableRawPointer, view: CNode, handle: OpaquePointer, initialize: apus_operator_init_fn,
        onEvent: @escaping apus_operator_on_event_fn, drop: @escaping apus_operator_drop_fn
    ) throws(OperatorLoadError) {
        self.library = library
        self.view = view
        self.handle = handle
        self.onEvent = onEvent
        self.dropFunction = drop
        var state: UnsafeMutableRawPointer?
        let status = initialize(handle, &state)
        guard status == APUS_OK else {
            dlclose(library)
            let reason = view.failure ?? String(cString: apus_status_name(status))
            throw OperatorLoadError(description: "its init failed: \(reason)")
        }
        self.state = state
    }

    func handle(_ event: Event) -> OperatorOutcome {
        // One event object, registered once, lent for each call.
        if lent == nil {
            let made = CEvent(owner: view, event: event)
            made.isLent = true
            guard let registered = HandleTable.shared.insert(made, kind: .event) else {
                return .failed("too many live handles to pass it an event")
            }
            lent = (made, registered)
        }
        let (cEvent, eventHandle) = lent!
        cEvent.reuse(for: event)
        let status = onEvent(handle, eventHandle, state)
        cEvent.reuse(for: .stop)  // lets the input go: its sample returns to its producer now
        switch status {
        case APUS_OPERATOR_CONTINUE: return .proceed
        case APUS_OPERATOR_STOP: return .stop
        case APUS_OPERATOR_STOP_ALL: return .stopAll
        case APUS_OPERATOR_ERROR: return .failed(view.failure ?? "it returned APUS_OPERATOR_ERROR without a message")
        default: return .failed("on_event returned \(status.rawValue), which is not an apus_operator_status_t")
        }
    }

    func drop() {
        dropFunction(handle, state)
        if let (_, eventHandle) = lent { _ = HandleTable.shared.remove(eventHandle, kind: .event) }
        lent = nil
        dlclose(library)
    }
}

@c @implementation
public func apus_operator_fail(_ node: OpaquePointer?, _ message: UnsafePointer<CChar>?) -> apus_status_t {
    status("apus_operator_fail") { () throws(APIError) in
        let view = try resolve(node, .node, as: CNode.self)
        guard view.isOperatorView else { throw .invalidArgument("the node is not an operator's") }
        view.failure = try requireText(message, "message")
    }
}
