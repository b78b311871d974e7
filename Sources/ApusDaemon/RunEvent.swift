import ApusTransport

/// What `apus run` tells the daemon that started it, one line each on a pipe of their own
/// (`apus run --events-fd`), so that the daemon never reads facts out of log lines.
public enum RunEvent: Equatable, Sendable {
    /// A node was restarted by its restart_policy.
    case restarted(node: String)

    /// The event as one line, without its newline.
    public var line: String {
        switch self {
        case .restarted(let node): "restarted \(node)"
        }
    }

    /// An event read back from its line; nil for a line that is not one.
    public init?(line: String) {
        let parts = line.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "restarted" else { return nil }
        self = .restarted(node: String(parts[1]))
    }

    /// Writes the event to `fd` (nil: nobody listens).
    static func send(_ event: RunEvent, to fd: Int32?) {
        guard let fd else { return }
        writeLine(fd, event.line)
    }
}
