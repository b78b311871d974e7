// How `apus run` and the daemons of other machines talk over DDS: each daemon announces its
// machine; a run asks a machine's daemon to start or stop its part; the daemon sends back what
// the part prints, and its end. The topics are here; what goes on them (JSON: presences and
// requests) is ApusDaemon's Federation+Messages, so that this module, which every node that sends
// to other machines links, needs no Foundation.

public enum Federation {
    /// Every daemon's presence: one message each (`Presence`), kept for whoever joins later; its
    /// writer's liveliness says the daemon is still there.
    public static let directoryTopic = BridgeMessage.topicName(["apus", "machines"])
    /// Requests to a machine's daemon.
    public static func requestTopic(_ machine: String) -> String { BridgeMessage.topicName(["apus", "requests", machine]) }
    /// What a machine's part of run `run` prints, line by line; its end is the last message.
    public static func outputTopic(run: String, machine: String) -> String {
        BridgeMessage.topicName(["apus", "runs", run, "output", machine])
    }

    /// What a line of output's header says: which stream it came from, or that the part ended.
    public enum Stream: UInt8, Sendable {
        case stdout = 1
        case stderr = 2
    }
}
