import ApusDataflow
import ArgumentParser

extension GraphFormat: ExpressibleByArgument {}

struct Graph: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a dataflow's graph as Mermaid or Graphviz DOT.",
        discussion: """
            Nodes are boxes, timers are their own sources, and each edge is labelled with the input \
            it feeds (and the queue settings that differ from the default). Node paths need not \
            exist yet. Example: apus graph dataflow.yml --format dot | dot -Tsvg > graph.svg
            """
    )

    @Argument(help: "The dataflow file.", completion: .file(extensions: ["yml", "yaml"]))
    var file: String

    @Option(help: "Output format: \(GraphFormat.allCases.map(\.rawValue).joined(separator: " or ")).")
    var format: GraphFormat = .mermaid

    func run() throws {
        do {
            let dataflow = try DataflowLoader(checksPaths: false).load(file: file)
            print(DataflowGraph(dataflow).render(format), terminator: "")
        } catch {
            for diagnostic in error.diagnostics { printError(diagnostic.description) }
            throw ExitCode(1)
        }
    }
}
