// `apus node add|remove`: nodes that join a running dataflow and leave it (dora's `node add/remove`).
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Add a node to a running dataflow, or remove one.",
        subcommands: [NodeAdd.self, NodeRemove.self]
    )
}

struct NodeAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add the node a node file describes to a running dataflow.",
        discussion: """
            The node file holds one node in the shape of a dataflow's node (id, path, inputs, outputs, \
            env, ...), checked as `apus check` checks a dataflow: errors name the file, line and key. \
            Its inputs may take any running node's outputs (they are fed from when it is ready), and \
            nodes and inspectors that join later may take its outputs. Its path is relative to the node \
            file; it runs in the dataflow's folder, and is supervised like the others (logs, restarts, \
            STOP). Nothing else restarts. dora's form `--from-yaml FILE --dataflow NAME` works too.
            """
    )

    @Argument(
        help: "The dataflow (its name or run id), then the node file; or only the node file, with --dataflow or one dataflow running.")
    var arguments: [String] = []

    @Option(name: .customLong("from-yaml"), help: "The node file (dora's spelling).")
    var fromYAML: String?

    @Option(help: "The dataflow: its name or run id (dora's spelling).")
    var dataflow: String?

    func validate() throws {
        guard arguments.count + (fromYAML == nil ? 0 : 1) + (dataflow == nil ? 0 : 1) <= 2, arguments.count + (fromYAML == nil ? 0 : 1) >= 1
        else {
            throw ValidationError("name the dataflow and the node file: apus node add DATAFLOW NODE.yml")
        }
    }

    func run() throws {
        let file = fromYAML ?? arguments.last!
        let name = dataflow ?? (arguments.count == (fromYAML == nil ? 2 : 1) ? arguments.first : nil)
        let run = try RunFinder.find(name)
        guard let text = readFile(file) else {
            printError("\(file): \(FileManager.default.fileExists(atPath: file) ? "cannot be read as UTF-8 text" : "no such file")")
            throw ExitCode(1)
        }
        let directory = URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path
        switch Result(catching: { () throws(ControlError) in
            try RunFinder.ask(run.socket, "add", json: AddNodeRequest(file: file, directory: directory, yaml: text)).1
        }) {
        case .success(let id):
            print("added node '\(id)' to \(run.description.name) (its output goes to the dataflow's console and \(id).log)")
        case .failure(let error):
            printError(error.description)
            printError("\(file): the node was not added")
            throw ExitCode(1)
        }
    }

    private func readFile(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else { return nil }
        return String(data: data, encoding: .utf8)
    }
}

struct NodeRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Stop a node of a running dataflow and take it out.",
        discussion: """
            The node gets STOP and the run's grace period to finish, then SIGKILL. Its consumers see \
            its inputs close; what it held or had queued goes back to its producers, which carry on. \
            A removed node is not restarted, and its end is no failure of the run.
            """
    )

    @Argument(help: "The dataflow: its name or run id.")
    var dataflow: String

    @Argument(help: "The node's id.")
    var node: String

    @Option(help: "Seconds to wait for it to be gone.")
    var timeout: Double = 30

    func run() throws {
        let run = try RunFinder.find(dataflow)
        if case .failure(let error) = Result(catching: { () throws(ControlError) in
            try RunFinder.ask(run.socket, "remove", Array(node.utf8))
        }) {
            printError(error.description)
            throw ExitCode(1)
        }
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            guard let snapshot = try? RunFinder.snapshot(run.socket) else { break }  // the run ended
            let gone = snapshot.nodes.last { $0.id == node }.map { !["running", "starting", "restarting"].contains($0.status) } ?? true
            if gone { break }
            usleep(50_000)
        }
        print("removed node '\(node)' from \(run.description.name)")
    }
}
