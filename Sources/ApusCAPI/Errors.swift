// Status codes and the per-thread last error of the C API.
import ApusNode
import ApusTransport
import CApusHeader
import Glibc

/// A failure inside an API call: the status returned to C and the message `apus_last_error` gives.
struct APIError: Error {
    var status: apus_status_t
    var message: String

    init(_ status: apus_status_t, _ message: String) {
        self.status = status
        self.message = message
    }

    init(_ error: NodeError) {
        switch error {
        case .notInDataflow, .alreadyJoined: self.init(APUS_ERROR_NOT_IN_DATAFLOW, error.description)
        case .unknownOutput: self.init(APUS_ERROR_UNKNOWN_OUTPUT, error.description)
        case .outputClosed: self.init(APUS_ERROR_OUTPUT_CLOSED, error.description)
        case .lengthMismatch, .shapeMismatch: self.init(APUS_ERROR_LENGTH, error.description)
        case .contractViolation: self.init(APUS_ERROR_WRONG_TYPE, error.description)
        case .daemonGone: self.init(APUS_ERROR_DISCONNECTED, error.description)
        case .protocolViolation: self.init(APUS_ERROR_TRANSPORT, error.description)
        case .transport(let transport): self.init(transport)
        }
    }

    init(_ error: TransportError) {
        switch error {
        case .sampleTooLarge, .metadataTooLarge: self.init(APUS_ERROR_LENGTH, error.description)
        case .disconnected: self.init(APUS_ERROR_DISCONNECTED, NodeError.daemonGone.description)
        default: self.init(APUS_ERROR_TRANSPORT, error.description)
        }
    }

    static func invalidArgument(_ message: String) -> APIError {
        APIError(APUS_ERROR_INVALID_ARGUMENT, message)
    }
}

/// The last error of one thread. The message is kept as a C string, valid until the next failure.
private final class ThreadError {
    var status = APUS_OK
    var message: UnsafeMutablePointer<CChar>?

    deinit { free(message) }
}

private let threadErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { state in
        if let state { Unmanaged<ThreadError>.fromOpaque(state).release() }
    }
    return key
}()

private func threadError() -> ThreadError {
    if let state = pthread_getspecific(threadErrorKey) {
        return Unmanaged<ThreadError>.fromOpaque(state).takeUnretainedValue()
    }
    let state = ThreadError()
    pthread_setspecific(threadErrorKey, Unmanaged.passRetained(state).toOpaque())
    return state
}

/// Records a failure of `function` for `apus_last_status` and `apus_last_error`.
func record(_ error: APIError, in function: StaticString) {
    let state = threadError()
    state.status = error.status
    free(state.message)
    state.message = strdup("\(function): \(error.message)")
}

/// Runs the body of an API function that returns a status.
@inline(__always)
func status(_ function: StaticString, _ body: () throws(APIError) -> Void) -> apus_status_t {
    do {
        try body()
        return APUS_OK
    } catch {
        record(error, in: function)
        return error.status
    }
}

/// Runs the body of an API function that returns a value, or `fallback` on failure.
@inline(__always)
func value<Value>(_ function: StaticString, fallback: Value, _ body: () throws(APIError) -> Value) -> Value {
    do {
        return try body()
    } catch {
        record(error, in: function)
        return fallback
    }
}

/// The C string of a required argument, or an error naming it.
func requireString(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(APIError) -> UnsafePointer<CChar> {
    guard let pointer else { throw .invalidArgument("\(name) is NULL") }
    return pointer
}

/// A required argument as a Swift string; invalid UTF-8 is refused rather than repaired.
func requireText(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(APIError) -> String {
    guard let text = String(validatingCString: try requireString(pointer, name)) else {
        throw .invalidArgument("\(name) is not valid UTF-8")
    }
    return text
}

/// A required out-pointer.
func requireOut<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String) throws(APIError) -> UnsafeMutablePointer<T> {
    guard let pointer else { throw .invalidArgument("\(name) is NULL") }
    return pointer
}

/// A size_t from C: Swift sees it as Int, so lengths past Int.max arrive negative.
func requireLength(_ length: Int, _ name: String) throws(APIError) -> Int {
    guard length >= 0 else { throw APIError(APUS_ERROR_LENGTH, "\(name) \(UInt(bitPattern: length)) is larger than any sample can be") }
    return length
}

/// Looks up the object behind a handle.
func resolve<Object: AnyObject>(_ handle: OpaquePointer?, _ kind: HandleKind, as type: Object.Type) throws(APIError) -> Object {
    switch HandleTable.shared.object(handle, kind: kind) {
    case .success(let object): return unsafeDowncast(object, to: Object.self)
    case .failure(let failure): throw invalidHandle(failure, kind)
    }
}

func invalidHandle(_ failure: HandleTable.LookupFailure, _ kind: HandleKind) -> APIError {
    switch failure {
    case .null:
        return APIError(APUS_ERROR_INVALID_HANDLE, "the \(kind.name) is NULL")
    case .stale:
        return APIError(APUS_ERROR_INVALID_HANDLE, "not a live \(kind.name): it was freed already, or is another kind of handle")
    }
}

/// Registers `object` and returns its handle for C.
func register(_ object: AnyObject, _ kind: HandleKind) throws(APIError) -> OpaquePointer {
    guard let handle = HandleTable.shared.insert(object, kind: kind) else {
        throw APIError(APUS_ERROR_TRANSPORT, "too many live handles: free the events, samples and metadata no longer used")
    }
    return handle
}

/// Frees a handle and returns the object behind it (released when the caller lets go of it).
func take<Object: AnyObject>(_ handle: OpaquePointer?, _ kind: HandleKind, as type: Object.Type) throws(APIError) -> Object {
    switch HandleTable.shared.remove(handle, kind: kind) {
    case .success(let object): return unsafeDowncast(object, to: Object.self)
    case .failure(let failure): throw invalidHandle(failure, kind)
    }
}

/// Frees a handle; NULL is accepted and does nothing.
func freeHandle(_ handle: OpaquePointer?, _ kind: HandleKind, _ function: StaticString) -> apus_status_t {
    guard handle != nil else { return APUS_OK }
    return status(function) { () throws(APIError) in _ = try take(handle, kind, as: AnyObject.self) }
}

// MARK: API

/// APUS_VERSION as a C string that lives as long as the process.
nonisolated(unsafe) private let versionCString = UnsafePointer(strdup(APUS_VERSION)!)

@c @implementation
public func apus_version() -> UnsafePointer<CChar>! {
    versionCString
}

@c @implementation
public func apus_last_status() -> apus_status_t {
    threadError().status
}

@c @implementation
public func apus_last_error() -> UnsafePointer<CChar>! {
    UnsafePointer(threadError().message) ?? emptyString
}

@c @implementation
public func apus_status_name(_ status: apus_status_t) -> UnsafePointer<CChar>! {
    (statusNames.first { $0.status == status }?.name ?? "APUS_UNKNOWN_STATUS").cString
}

private let statusNames: [(status: apus_status_t, name: StaticString)] = [
    (APUS_OK, "APUS_OK"), (APUS_TIMEOUT, "APUS_TIMEOUT"), (APUS_FINISHED, "APUS_FINISHED"),
    (APUS_ERROR_INVALID_HANDLE, "APUS_ERROR_INVALID_HANDLE"), (APUS_ERROR_INVALID_ARGUMENT, "APUS_ERROR_INVALID_ARGUMENT"),
    (APUS_ERROR_UNKNOWN_OUTPUT, "APUS_ERROR_UNKNOWN_OUTPUT"), (APUS_ERROR_OUTPUT_CLOSED, "APUS_ERROR_OUTPUT_CLOSED"),
    (APUS_ERROR_LENGTH, "APUS_ERROR_LENGTH"), (APUS_ERROR_NOT_FOUND, "APUS_ERROR_NOT_FOUND"),
    (APUS_ERROR_WRONG_TYPE, "APUS_ERROR_WRONG_TYPE"), (APUS_ERROR_NOT_IN_DATAFLOW, "APUS_ERROR_NOT_IN_DATAFLOW"),
    (APUS_ERROR_DISCONNECTED, "APUS_ERROR_DISCONNECTED"), (APUS_ERROR_TRANSPORT, "APUS_ERROR_TRANSPORT"),
]

extension StaticString {
    var cString: UnsafePointer<CChar> {
        UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// "" for pointers that have nothing to point to.
var emptyString: UnsafePointer<CChar> { StaticString("").cString }
