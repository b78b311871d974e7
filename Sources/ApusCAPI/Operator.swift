// What every kind of operator is to the runtime: loaded once, called per event, dropped last.
@_spi(CAPI) import ApusNode

/// What an operator asks for after an event.
enum OperatorOutcome: Equatable {
    case proceed
    /// It is done: its outputs close, and it gets no more events.
    case stop
    /// Stop the whole dataflow.
    case stopAll
    /// It failed, saying why: it is reported and gets no more events.
    case failed(String)
}

/// One kind of operator (a shared library today; Wasm and Python plug in the same way).
/// All calls for one operator come from one thread.
protocol OperatorInstance: AnyObject {
    /// Handles one event of the operator's inputs (ids as the operator declared them), or STOP.
    func handle(_ event: Event) -> OperatorOutcome
    /// Called once, last, on the thread that handled the events.
    func drop()
    /// Replaces a failed instance with a fresh one (a kind that can: Wasm); throws if it cannot.
    func restart() throws(OperatorLoadError)
}

extension OperatorInstance {
    func restart() throws(OperatorLoadError) {
        throw OperatorLoadError(description: "this kind of operator shares its process: the node's restart_policy applies")
    }
}

/// Why an operator could not be loaded: names the file and what is missing.
struct OperatorLoadError: Error, CustomStringConvertible {
    let description: String
}
