// `apus list`: the daemon's dataflows.
import ApusDaemon
import ArgumentParser
import Foundation
import Glibc

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the daemon's dataflows: running and ended.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let (_, response) = try request(ControlRequest(.list))
        let dataflows = response.dataflows ?? []
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(dataflows), as: UTF8.self))
            return
        }
        guard !dataflows.isEmpty else {
            print("no dataflows")
            return
        }
        let now = Date().timeIntervalSince1970
        var rows = [["NAME", "ID", "STATUS", "NODES", "UPTIME", "RESTARTS"]]
        for dataflow in dataflows {
            let status = dataflow.exitStatus.map { "\(dataflow.status.rawValue) (\($0))" } ?? dataflow.status.rawValue
            rows.append([
                dataflow.name, dataflow.id, status, "\(dataflow.nodes)",
                formatUptime((dataflow.endedAt ?? now) - dataflow.startedAt), "\(dataflow.restarts)",
            ])
        }
        print(tableText(rows))
    }
}

private func formatUptime(_ seconds: Double) -> String {
    let whole = Int(max(0, seconds))
    if whole < 60 { return "\(whole)s" }
    if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
    return "\(whole / 3600)h\(whole % 3600 / 60)m"
}
