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

    @OptionGroup var machineOptions: MachineOptions

    func run() throws {
        guard let executable = Installation.executablePath() else {
            printError("apus daemon: cannot find this apus executable")
            throw ExitCode(1)
        }
        let stopping = StopFlag()
        let agentEnded = DispatchSemaphore(value: 0)
        let daemon: ControlDaemon
        do {
            daemon = try ControlDaemon(paths: ControlPaths(), executable: executable)
        } catch {
            printError("apus daemon: \(error)")
            throw ExitCode(1)
        }
        if let machine = machineOptions.machine {
            // The agent's DDS threads must not take the signals the daemon reads from its signalfd.
            SignalWatch.blockInThisThread(ControlDaemon.watchedSignals)
            let mailbox = daemon.mailbox
            let agent = MachineAgent(machine: machine, labels: machineOptions.labels, domain: machineOptions.ddsDomain ?? 0) { line in
                printError("apus daemon: \(line)")
            }
            Thread.detachNewThread {
                defer { agentEnded.signal() }
                do {
                    try agent.serve(mailbox: mailbox) { stopping.value.load(ordering: .relaxed) }
                } catch {
                    printError("apus daemon: machine '\(machine)': \(error)")
                    Glibc.exit(1)
                }
            }
        }
        let code = daemon.run()
        if machineOptions.machine != nil {
            stopping.value.store(true, ordering: .relaxed)
            agentEnded.wait()
        }
        if code != 0 { throw ExitCode(code) }
    }

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }
}
