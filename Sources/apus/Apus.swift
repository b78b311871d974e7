import ArgumentParser

@main
struct Apus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apus",
        abstract: "Run robotics dataflows: nodes in C, Python and Swift wired over shared memory.",
        discussion: """
            A dataflow file (YAML, compatible with dora-rs) names the nodes and wires their outputs to \
            other nodes' inputs. Start with `apus run FILE`; `apus check FILE` validates one without running it.
            """,
        version: ApusVersion.current,
        subcommands: [Run.self, Build.self, New.self, Check.self, Graph.self, Config.self,
                      Up.self, Down.self, Start.self, Stop.self, List.self, Logs.self, DaemonServe.self]
    )
}

enum ApusVersion {
    static let current = "0.1.0"
}
