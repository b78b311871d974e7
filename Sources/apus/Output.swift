import ApusDaemon
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
