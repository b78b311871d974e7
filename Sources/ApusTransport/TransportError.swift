import Glibc

/// What can go wrong in the transport. Every case says enough to act on.
public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed: which one, and errno.
    case system(operation: String, errno: Int32)
    /// No slot came free in time; the consumers hold or queue every sample of the pool.
    case poolExhausted(payloadLength: Int, waitedNanoseconds: Int64)
    /// A `backpressure` input stayed full for the whole timeout.
    case backpressureTimeout(input: Int)
    /// The sample is larger than the configured maximum.
    case sampleTooLarge(length: Int, maximum: Int)
    /// Metadata (shape and parameters) does not fit the pool's metadata area.
    case metadataTooLarge(length: Int, capacity: Int)
    /// Something in shared memory breaks the layout rules: written by a faulty or hostile process.
    case corrupted(String)
    /// The caller broke an API rule (an argument out of range, an edge that does not exist).
    case invalidArgument(String)
    /// A message on a control socket does not have the expected shape.
    case malformedMessage(String)
    /// The other end of a socket is gone.
    case disconnected

    public var description: String {
        switch self {
        case .system(let operation, let errno):
            return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .poolExhausted(let length, let waited):
            return "no free sample for \(length) bytes after \(waited / 1_000_000) ms: consumers hold every sample of the pool"
        case .backpressureTimeout(let input):
            return "input ring \(input) stayed full (backpressure) for the whole timeout"
        case .sampleTooLarge(let length, let maximum):
            return "sample of \(length) bytes is larger than the maximum of \(maximum) bytes"
        case .metadataTooLarge(let length, let capacity):
            return "metadata of \(length) bytes does not fit the \(capacity) bytes reserved per sample"
        case .corrupted(let what):
            return "corrupted shared memory: \(what)"
        case .invalidArgument(let what):
            return "invalid argument: \(what)"
        case .malformedMessage(let what):
            return "malformed control message: \(what)"
        case .disconnected:
            return "the other end of the socket is gone"
        }
    }

    /// Turns a shim result (`-errno` on failure) into an error.
    static func check(_ result: Int32, _ operation: String) throws(TransportError) -> Int32 {
        if result < 0 { throw .system(operation: operation, errno: -result) }
        return result
    }
}
