// `apus daemon`: the daemon in the foreground (what `apus up` starts).
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct DaemonServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the daemon in the foreground (`apus up` starts it in the background).",
        shouldDisplay: false)

    func run() throws {
        guard let executable = Installation.executablePath() else {
            printError("apus daemon: cannot find this apus executable")
            throw ExitCode(1)
        }
        let code = ControlDaemon(paths: ControlPaths(), executable: executable).run()
        if code != 0 { throw ExitCode(code) }
    }
}
