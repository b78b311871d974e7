// Node output: each stdout/stderr line to the console and the node's log, and to `send_stdout_as`.
import ApusDataflow
import ApusTransport
import CApusSys
import Glibc

extension Supervisor {
    func readOutput(_ node: NodeRuntime, stderr: Bool) {
        let fd = stderr ? node.stderr : node.stdout
        guard fd >= 0 else { return }
        let open: Bool
        if stderr {
            open = drainPipe(fd, into: &node.stderrLines) { line in
                node.remember(stderrLine: line)
                emit(node, line)
            }
        } else {
            open = drainPipe(fd, into: &node.stdoutLines) { line in
                emit(node, line)
                forwardStdout(node, line)
            }
        }
        if !open {
            close(fd)
            if stderr { node.stderr = -1 } else { node.stdout = -1 }
        }
    }

    func emit(_ node: NodeRuntime, _ line: String) {
        console.line(node: node.index, id: node.id, line)
        writeLog(node, line)
    }

    /// Appends a line to the node's log file. A write that fails (a full disk) is said once, and
    /// the file is given up; the node's lines still reach the console.
    func writeLog(_ node: NodeRuntime, _ text: String) {
        guard node.log >= 0 else { return }
        if !writeAll(node.log, Array((text + "\n").utf8)) {
            console.note(
                "node '\(node.id)': cannot write its log file \(logPath(of: node)): \(String(cString: strerror(errno))); "
                    + "its further output is shown here only")
            close(node.log)
            node.log = -1
        }
    }

    func logPath(of node: NodeRuntime) -> String {
        logDirectory + "/" + node.id + ".log"
    }

    func forwardStdout(_ node: NodeRuntime, _ line: String) {
        guard let publisher = node.stdoutPublisher else { return }
        var line = line
        let sent = line.withUTF8 { bytes in
            Result { () throws(TransportError) in
                try publisher.send(UnsafeRawBufferPointer(bytes), output: 0, metadata: SampleMetadata(elementType: .utf8))
            }
        }
        if case .failure(let error) = sent {
            console.note("node '\(node.id)': stdout line not sent on '\(node.plan.descriptor.sendStdoutAs ?? "")': \(error)")
        }
    }
}
