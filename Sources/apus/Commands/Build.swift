import ApusDaemon
import ApusDataflow
import ArgumentParser

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a dataflow's build steps only, as `apus run` would before starting.",
        discussion: """
            Each distinct `build:` command runs once, in the dataflow file's folder, with this apus \
            first on PATH (so `$(apus config --cflags --libs)` works), its output shown as [node] lines. \
            Stops at the first failing step and exits 1. Also prepares the apus Python module when \
            the dataflow has Python nodes.
            """
    )

    @Argument(help: "The dataflow file.", completion: .file(extensions: ["yml", "yaml"]))
    var file: String

    @Flag(inversion: .prefixedNo, help: "Colour node names (default: when standard output is a terminal).")
    var color: Bool?

    func run() throws {
        let dataflow = try loadDataflow(file, nothing: "built")
        var options = RunOptions()
        options.color = color
        let code = Supervisor(dataflow: dataflow, options: options).build()
        if code != 0 { throw ExitCode(code) }
    }
}
