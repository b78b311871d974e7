import Glibc

/// How `apus run` runs a dataflow.
public struct RunOptions: Sendable {
    /// Stop the dataflow (gracefully) after this many seconds.
    public var stopAfter: Double?
    /// Seconds between STOP and SIGTERM, and between SIGTERM and SIGKILL's last resort.
    public var grace: Double = 10
    /// Seconds every node has to connect before the run fails naming the ones that did not.
    public var startupTimeout: Double = 30
    public var runBuild = true
    /// Give Python nodes Apus's `dora` module (dora-rs's node API), first on their path.
    /// APUS_DORA_PYTHON=0 in the environment or a node's env turns it off too.
    public var doraPython = true
    /// Colour `[node]` prefixes; nil: when standard output is a terminal.
    public var color: Bool?
    /// Where `RunEvent`s go, one line each (the daemon's pipe); nil: nowhere.
    public var eventsFD: Int32?
    /// What `apus top` and `apus topic` find the run by, besides its id; nil: the dataflow
    /// file's name without its extension.
    public var name: String?
    /// The folder of the nodes' log files; nil: out/<run id>/ next to the dataflow file.
    public var logDirectory: String?
    /// Nodes that get no STOP when the run is stopped: they end once their inputs have closed,
    /// having taken everything their producers sent (the recorder of `apus run --record`).
    public var drainingNodes: Set<String> = []
    /// Stops the run when requested from another thread, as Ctrl-C would (`apus run` across
    /// machines: another machine's part failed, or the machine was lost).
    public var stopRequest: StopRequest?
    /// The environment nodes start from (and `$VAR`s were expanded with).
    public var environment: [String]

    public init(environment: [String]? = nil) {
        self.environment = environment ?? currentEnvironment()
    }
}
