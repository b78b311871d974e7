// Python operators, in dora's shape: a file with a class `Operator` whose on_event(dora_event,
// send_output) returns a DoraStatus. They run in the embedded CPython (EmbeddedPython); the Python
// side is python/apus/operators.py. The GIL is held only while Python runs.
@_spi(CAPI) import ApusNode
import CApusHeader

final class PythonOperator: OperatorInstance {
    let python: EmbeddedPython
    let view: CNode
    /// apus.operators.PythonOperator, and its bound on_event.
    private let hosted: PyObject
    private let onEvent: PyObject

    init(path: String, id: String, view: CNode, handle: OpaquePointer) throws(OperatorLoadError) {
        python = try EmbeddedPython.shared()
        self.view = view
        let python = python
        (hosted, onEvent) = try python.locked { () throws(OperatorLoadError) in
            let address = Int64(Int(bitPattern: UnsafeRawPointer(handle)))
            guard let result = python.call("load_python", [.text(path), .text(id), .int(address)]) else {
                throw OperatorLoadError(description: "apus.operators.load_python failed (see the traceback above)")
            }
            defer { python.release(result) }
            let reason = python.text(result, 0) ?? "apus.operators.load_python gave no answer"
            guard reason.isEmpty, let hosted = python.object(result, 1) else { throw OperatorLoadError(description: reason) }
            guard let onEvent = python.attribute("on_event", of: hosted) else {
                python.release(hosted)
                throw OperatorLoadError(description: "apus.operators.PythonOperator has no on_event")
            }
            return (hosted, onEvent)
        }
    }

    func handle(_ event: Event) -> OperatorOutcome {
        // Python gets an event handle of its own, as a node's next() gives: the sample stays
        // pinned while the event (or an array over its value) lives, and Python frees it.
        guard let eventHandle = HandleTable.shared.insert(CEvent(owner: view, event: event), kind: .event) else {
            return .failed("too many live handles to pass it an event")
        }
        let address = Int64(Int(bitPattern: UnsafeRawPointer(eventHandle)))
        return python.locked { () -> OperatorOutcome in
            switch python.callReturningInt(onEvent, address) {
            case 0: .proceed
            case 1: .stop
            case 2: .stopAll
            case 3: .failed(python.text("error", of: hosted) ?? "on_event failed")
            default: .failed("on_event could not be called (see the traceback above)")
            }
        }
    }

    func drop() {
        python.locked {
            python.release(python.call("drop", of: hosted, []))
            python.release(onEvent)
            python.release(hosted)
        }
    }
}
