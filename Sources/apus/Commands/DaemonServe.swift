// `apus daemon`: the daemon in the foreground (what `apus up` starts).
import ApusDaemon
import ArgumentParser
import Foundation
import Dispatch
import Glibc
import Synchronization

struct DaemonServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the daemon in the foreground (`apus up` starts it in the background).",
        shouldDisplay: false)

    @Option(
        help: ArgumentHelp(
            "Serve as this machine for dataflows started on other machines (nodes with deploy: {machine: NAME}), over DDS.",
            valueName: "name"))
    var machine: String?

    @Option(help: ArgumentHelp("The DDS domain to serve on.", valueName: "id"))
    var ddsDomain: UInt32 = 0

    func run() throws {
        guard let executable = Installation.executablePath() else {
            printError("apus daemon: cannot find this apus executable")
            throw ExitCode(1)
        }
        let stopping = StopFlag()
        let agentEnded = DispatchSemaphore(value: 0)
        if let machine {
            // The agent's DDS threads must not take the signals the daemon reads from its signalfd.
            SignalWatch.blockInThisThread(ControlDaemon.watchedSignals)
            let agent = MachineAgent(machine: machine, domain: ddsDomain, executable: executable) { line in
                printError("apus daemon: \(line)")
            }
            Thread.detachNewThread {
                defer { agentEnded.signal() }
                do {
                    try agent.serve { stopping.value.load(ordering: .relaxed) }
                } catch {
                    printError("apus daemon: machine '\(machine)': \(error)")
                    Glibc.exit(1)
                }
            }
        }
        let code = ControlDaemon(paths: ControlPaths(), executable: executable).run()
        if machine != nil {
            stopping.value.store(true, ordering: .relaxed)
            agentEnded.wait()
        }
        if code != 0 { throw ExitCode(code) }
    }

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }
}
