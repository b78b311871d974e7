// `apus logs`: a dataflow's output, from the daemon.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a dataflow's output (all nodes, or one), from the daemon.",
        discussion: "With --follow keeps printing new lines until the dataflow ends.")

    @Argument(help: "The dataflow's name or id.")
    var dataflow: String

    @Argument(help: "Only this node's lines (without their [node] prefix).")
    var node: String?

    @Flag(name: .shortAndLong, help: "Keep printing new lines until the dataflow ends.")
    var follow = false

    func run() throws {
        var logs = ControlRequest(.logs)
        logs.name = dataflow
        logs.node = node
        logs.follow = follow
        let (connection, _) = try request(logs)
        _ = try stream(connection)
    }
}
