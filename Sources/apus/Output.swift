import ApusDaemon
import ApusDataflow
import ApusTransport
import ArgumentParser
import Logging

/// Writes a line to standard error (diagnostics go there; results go to standard output).
func printError(_ line: String) {
    writeAll(2, line + "\n")
}

enum CommandLogger {
    /// A logger writing to standard error, at debug level when `verbose`.
    static func make(label: String, verbose: Bool) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .debug : .notice
        return logger
    }
}

/// Loads a dataflow file for a command, or prints every problem and exits 1 saying that nothing
/// was `done` ("started", "built").
func loadDataflow(_ file: String, nothing done: String) throws -> DataflowDescriptor {
    do {
        let dataflow = try DataflowLoader().load(file: file)
        for warning in dataflow.warnings { printError("warning: \(warning.description)") }
        return dataflow
    } catch {
        for diagnostic in error.diagnostics { printError(diagnostic.description) }
        let count = error.diagnostics.count
        printError("\(file): \(count) error\(count == 1 ? "" : "s"); nothing was \(done)")
        throw ExitCode(1)
    }
}

/// Rows as columns padded to their widest cell, the first row the header.
func tableText(_ rows: [[String]]) -> String {
    let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
        zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}
