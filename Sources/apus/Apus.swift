import ApusDaemon
import ArgumentParser

@main
struct Apus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apus",
        abstract: "Run robotics dataflows: nodes in C, Python and Swift wired over shared memory.",
        discussion: """
            A dataflow file (YAML, compatible with dora-rs) names the nodes and wires their outputs to \
            other nodes' inputs. Start with `apus run FILE`; `apus check FILE` validates one without running it; \
            `apus new NAME --lang c|python|swift --dataflow` makes a node to start from. `apus up` starts a \
            background daemon in which `apus start FILE` runs dataflows, managed with list, logs, stop and down.
            """,
        version: ApusVersion.current,
        subcommands: [
            Run.self, Build.self, New.self, Check.self, Graph.self, Config.self, WasmCC.self,
            Up.self, Down.self, Start.self, Stop.self, List.self, Logs.self, Top.self, Topic.self, NodeCommand.self, Record.self,
            Replay.self, ReplayNode.self, RecordNode.self, BridgeOut.self, BridgeIn.self,
            DaemonServe.self,
        ]
    )
}

enum ApusVersion {
    /// The daemon's protocol version is the release's version: one number for both.
    static let current = ControlProtocol.version
}
