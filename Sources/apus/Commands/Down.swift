// `apus down`: stop the background daemon.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the background daemon.",
        discussion: "Refuses while dataflows run, unless --force: then they are stopped first (STOP, then killed after their grace period)."
    )

    @Flag(help: "Stop running dataflows first.")
    var force = false

    func run() throws {
        let paths = ControlPaths()
        var down = ControlRequest(.down)
        down.force = force
        do {
            let connection = try ControlConnection.connect(paths.socket)
            try connection.send(down)
            // The answer comes once the daemon's dataflows have ended; then it exits.
            if let response = try connection.receive(), !response.ok {
                printError("apus down: \(response.error ?? "refused")")
                throw ExitCode(1)
            }
        } catch let error as ControlError {
            if case .noDaemon = error {
                print("no apus daemon is running")
                return
            }
            printError("apus down: \(error)")
            throw ExitCode(1)
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? ping(paths)) != nil { usleep(20_000) }
        print("apus daemon stopped")
    }
}
