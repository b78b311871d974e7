// `apus stop`: stop a dataflow running in the daemon.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a dataflow running in the daemon, and wait until it has ended.",
        discussion: "Its nodes get STOP; those still running after the grace period are killed.")

    @Argument(help: "The dataflow's name or id (see `apus list`).")
    var dataflow: String

    @Option(help: ArgumentHelp("Time nodes get to exit after STOP before they are killed.", valueName: "duration"))
    var grace = "10s"

    func validate() throws {
        if parseDuration(grace) == nil { throw ValidationError(durationProblem("--grace", grace)) }
    }

    func run() throws {
        var stop = ControlRequest(.stop)
        stop.name = dataflow
        stop.grace = parseDuration(grace)
        let (_, response) = try request(stop)
        guard let id = response.dataflow?.id else { return }
        let deadline = Date().addingTimeInterval((parseDuration(grace) ?? 10) + 30)
        while Date() < deadline {
            let (_, listed) = try request(ControlRequest(.list))
            if let current = listed.dataflows?.first(where: { $0.id == id }), !current.status.isRunning {
                print("stopped \(current.name) (id \(id)): \(current.status.rawValue), exit status \(current.exitStatus ?? 0)")
                return
            }
            usleep(50_000)
        }
        printError("apus stop: dataflow \(dataflow) is still stopping")
        throw ExitCode(1)
    }
}
