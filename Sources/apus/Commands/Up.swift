// `apus up`: start the background daemon.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the background daemon that `apus start` runs dataflows in.",
        discussion: socketDiscussion
            + " Says so when one is running already; replaces a socket left by a daemon that died. With --machine it also serves as that machine for dataflows started on other machines (see `apus run --machine`)."
    )

    @OptionGroup var machineOptions: MachineOptions

    func run() throws {
        let paths = ControlPaths()
        if let response = try? ping(paths) {
            print("an apus daemon is already running (pid \(response.pid ?? 0), apus \(response.version)); socket \(paths.socket)")
            if machineOptions.machine != nil {
                print("it keeps the options it was started with: `apus down`, then `apus up --machine ...`, to change them")
            }
            return
        }
        guard let executable = Installation.executablePath() else {
            printError("apus up: cannot find this apus executable (/proc/self/exe)")
            throw ExitCode(1)
        }
        let pid: pid_t
        do {
            pid = try DaemonLauncher.launch(
                executable: executable, arguments: machineOptions.arguments, paths: paths,
                environment: ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" })
        } catch {
            printError("apus up: \(error)")
            throw ExitCode(1)
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let response = try? ping(paths) {
                print("apus daemon \(response.version) running (pid \(response.pid ?? pid)); socket \(paths.socket)")
                return
            }
            if kill(pid, 0) != 0 { break }
            usleep(20_000)
        }
        let tail = (try? String(contentsOfFile: paths.log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        printError("apus up: the daemon did not come up; the end of \(paths.log):\n\(tail)")
        throw ExitCode(1)
    }
}
