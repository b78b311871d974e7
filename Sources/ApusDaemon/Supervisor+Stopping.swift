// Stopping a run (STOP, the grace period, SIGTERM, SIGKILL) and the report at its end.
import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

extension Supervisor {
    func beginStop() {
        guard !stopping else { return }
        stopping = true
        for node in nodes {
            if case .waiting = node.state {
                node.state = .finished
                if node.restarts > 0 && node.failure == nil { node.failure = "stopped while waiting to restart" }
                finish(node, failed: false, message: "stopped")
            } else if node.isAlive, !node.stopSent, !options.drainingNodes.contains(node.id) {
                // (Inspectors and draining nodes get no STOP: their inputs close as the nodes
                // end, once they have taken what is queued for them.)
                node.stopSent = post(to: node, .stop)
            }
        }
        graceDeadline = monotonicNanoseconds() &+ seconds(options.grace)
    }

    func killAll(reason: String) {
        for node in nodes where node.isAlive {
            if node.ladderReason == nil || reason.hasPrefix("was still") { node.ladderReason = reason }
            kill(-node.pid, SIGKILL)
        }
    }

    // MARK: Report

    func report() -> Int32 {
        let failed = nodes.filter { $0.failure != nil }
        guard !failed.isEmpty else { return 0 }
        var lines = ["dataflow \(plan.dataflow.file) failed:"]
        for node in failed {
            lines.append("  node '\(node.id)' \(node.failure!)")
            if !node.stderrTail.isEmpty {
                lines.append("    last \(node.stderrTail.count) line\(node.stderrTail.count == 1 ? "" : "s") of its stderr:")
                lines += node.stderrTail.map { "      \($0)" }
            }
            lines.append("    full log: \(relativeLogDirectory)/\(node.id).log")
        }
        writeAll(2, lines.joined(separator: "\n") + "\n")
        return 1
    }
}
