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
        let minimum = node.plan.descriptor.minLogLevel ?? .stdout
        if stderr {
            open = drainPipe(fd, into: &node.stderrLines) { line in
                node.remember(stderrLine: line)
                // A log entry below min_log_level is dropped; other stderr lines (a traceback,
                // a crash report) always show.
                guard let entry = LogEntry(line) else { return emit(node, line) }
                guard entry.level >= minimum else { return }
                emit(node, line)
                forwardLog(node, entry)
            }
        } else {
            open = drainPipe(fd, into: &node.stdoutLines) { line in
                if minimum == .stdout { emit(node, line) }
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

    /// Appends a line to the node's log file, rotating it first if it would pass max_log_size. A
    /// write that fails (a full disk) is said once, and the file is given up; the node's lines
    /// still reach the console.
    func writeLog(_ node: NodeRuntime, _ text: String) {
        guard node.log >= 0 else { return }
        let bytes = Array((text + "\n").utf8)
        if let limit = node.plan.descriptor.maxLogSize, node.logBytes > 0, node.logBytes + bytes.count > limit {
            rotateLog(node)
            guard node.log >= 0 else { return }
        }
        node.logBytes += bytes.count
        if !writeAll(node.log, bytes) {
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

    /// NODE.log becomes NODE.log.1 (.1 becomes .2, and so on, the oldest past max_rotated_files
    /// removed), and a new NODE.log is started.
    func rotateLog(_ node: NodeRuntime) {
        let path = logPath(of: node)
        let kept = node.plan.descriptor.maxRotatedFiles
        close(node.log)
        unlink("\(path).\(kept)")
        for number in stride(from: kept - 1, through: 1, by: -1) { rename("\(path).\(number)", "\(path).\(number + 1)") }
        rename(path, "\(path).1")
        node.log = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        node.logBytes = 0
        if node.log < 0 {
            console.note(
                "node '\(node.id)': cannot start a new log file \(path): \(String(cString: strerror(errno))); its output is shown here only"
            )
        }
    }

    /// A log entry on the node's `send_logs_as` output, as dora's JSON.
    func forwardLog(_ node: NodeRuntime, _ entry: LogEntry) {
        publish(node, entry.json(node: node.id), output: 1, as: node.plan.descriptor.sendLogsAs, what: "log entry")
    }

    func forwardStdout(_ node: NodeRuntime, _ line: String) {
        publish(node, line, output: 0, as: node.plan.descriptor.sendStdoutAs, what: "stdout line")
    }

    /// `text` as a utf8 message on output `output` of the node's daemon-side publisher (0 for
    /// send_stdout_as, 1 for send_logs_as), if the node names that output `name`.
    private func publish(_ node: NodeRuntime, _ text: String, output: Int, as name: String?, what: String) {
        guard let publisher = node.stdoutPublisher, let name else { return }
        var text = text
        let sent = text.withUTF8 { bytes in
            Result { () throws(TransportError) in
                try publisher.send(UnsafeRawBufferPointer(bytes), output: output, metadata: SampleMetadata(elementType: .utf8))
            }
        }
        if case .failure(let error) = sent { console.note("node '\(node.id)': \(what) not sent on '\(name)': \(error)") }
    }
}

/// A line a node logged through apus_node_log (or a library on it): "LEVEL message", the level
/// padded to five characters.
struct LogEntry {
    static let prefixes: [(String, LogLevel)] = [
        ("ERROR ", .error), ("WARN  ", .warn), ("INFO  ", .info), ("DEBUG ", .debug), ("TRACE ", .trace),
    ]

    let level: LogLevel
    let message: String

    init?(_ line: String) {
        guard let (prefix, level) = Self.prefixes.first(where: { line.hasPrefix($0.0) }) else { return nil }
        self.level = level
        message = String(line.dropFirst(prefix.count))
    }

    /// dora's fields: timestamp (UTC, RFC 3339), level, node_id, message, target, fields.
    func json(node: String) -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        let stamp = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
            parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1000))
        let quoted = DataflowJSON.quoted
        return "{\"timestamp\":\(quoted(stamp)),\"level\":\(quoted(level.rawValue)),\"node_id\":\(quoted(node)),"
            + "\"message\":\(quoted(message)),\"target\":\(quoted(node)),\"fields\":{}}"
    }
}
