// `apus start`: run a dataflow in the background daemon.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a dataflow in the background daemon (see `apus up`).",
        discussion: """
            The daemon runs it as `apus run FILE` would, with this shell's environment, and keeps its \
            output for `apus logs`. --attach prints that output until the dataflow ends and exits with \
            its status; Ctrl-C then stops the dataflow.
            """)

    @Argument(help: "The dataflow file.", completion: .file(extensions: ["yml", "yaml"]))
    var file: String

    @Option(help: "The dataflow's name (default: the file's name without .yml).")
    var name: String?

    @Flag(help: "Print the dataflow's output until it ends.")
    var attach = false

    @OptionGroup var machines: AcrossMachinesOptions

    func run() throws {
        let path = absolutePath(file)
        var start = ControlRequest(.start)
        start.file = URL(fileURLWithPath: path).standardizedFileURL.path
        start.name = name
        start.follow = attach
        start.machine = machines.machine
        start.ddsDomain = machines.ddsDomain
        start.labels = machines.label.isEmpty ? nil : machines.label
        start.discoveryTimeout = machines.discoveryTimeout
        start.environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let (connection, response) = try request(start)
        guard let dataflow = response.dataflow else { return }
        guard attach else {
            print(
                "started \(dataflow.name) (id \(dataflow.id)), \(dataflow.nodes) node\(dataflow.nodes == 1 ? "" : "s"); `apus logs \(dataflow.name) --follow` shows its output"
            )
            return
        }
        let interrupts: SignalWatch
        do {
            interrupts = try SignalWatch([SIGINT])
        } catch {
            printError("apus start: \(error)")
            throw ExitCode(1)
        }
        let status = try stream(connection, interrupts: interrupts) {
            var stop = ControlRequest(.stop)
            stop.name = dataflow.id
            _ = try? request(stop)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
