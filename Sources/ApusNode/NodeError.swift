import ApusTransport

/// What can go wrong in a node. Every case says enough to act on.
public enum NodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The program was started by hand instead of by `apus run`.
    case notInDataflow(program: String)
    /// The process already made its node: a process is one node of its dataflow.
    case alreadyJoined
    /// `send` or `allocate` named an output the node does not declare in the dataflow.
    case unknownOutput(String, declared: [String])
    /// The output was closed with `closeOutput`.
    case outputClosed(String)
    /// The payload length does not fit the element type (e.g. 7 bytes of `float32`).
    case lengthMismatch(length: Int, elementType: ElementType)
    /// The payload does not hold as many elements as `metadata.shape` says.
    case shapeMismatch(shape: [UInt64], length: Int, elementType: ElementType)
    /// APUS_RUNTIME_TYPE_CHECK=error: the message does not fit its output's declared type or metadata.
    case contractViolation(String)
    /// The daemon's socket closed: `apus run` is gone.
    case daemonGone
    /// The daemon sent something this node cannot use.
    case protocolViolation(String)
    case transport(TransportError)

    public var description: String {
        switch self {
        case .notInDataflow(let program):
            return "\(program) is an Apus node: it runs inside a dataflow, started by `apus run dataflow.yml`, "
                + "which connects it to the other nodes (APUS_NODE_ID and APUS_CONTROL_FD are not set)"
        case .alreadyJoined:
            return "this process has already joined its dataflow (APUS_CONTROL_FD was used by the first Node, "
                + "apus_node_init_from_env or dora context): make the node once and keep it"
        case .unknownOutput(let output, let declared):
            let list = declared.isEmpty ? "none" : declared.map { "'\($0)'" }.joined(separator: ", ")
            return "output '\(output)' is not declared by this node in the dataflow (declared outputs: \(list))"
        case .outputClosed(let output):
            return "output '\(output)' was closed"
        case .lengthMismatch(let length, let elementType):
            return "\(length) bytes is not a whole number of \(elementType) elements (\(elementType.byteWidth) bytes each)"
        case .shapeMismatch(let shape, let length, let elementType):
            let dimensions = shape.map(String.init).joined(separator: "×")
            return "shape \(dimensions) of \(elementType) does not match a payload of \(length) bytes "
                + "(\(length / elementType.byteWidth) elements of \(elementType.byteWidth) bytes)"
        case .contractViolation(let message):
            return message
        case .daemonGone:
            return "the connection to the apus daemon closed: `apus run` has exited"
        case .protocolViolation(let what):
            return "unexpected message from the daemon: \(what)"
        case .transport(let error):
            return error.description
        }
    }
}
