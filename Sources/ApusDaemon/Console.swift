import ApusTransport
import CApusSys
import Glibc

/// Where a run speaks to the user: each node line as `[node] line` on standard output (a colour
/// per node on a terminal), and apus run's own notes on standard error. (The node log files are
/// written by `Supervisor.writeLog`.)
final class Console {
    let colored: Bool
    private let width: Int
    private static let colors = [36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91]

    init(nodeIDs: [String], colored: Bool) {
        self.colored = colored
        width = nodeIDs.map(\.count).max() ?? 0
    }

    /// Prints one line of a node (or its build step) to standard output.
    func line(node: Int, id: String, _ text: String) {
        let tag = "[\(id)]"
        if colored {
            let color = Self.colors[node % Self.colors.count]
            writeAll(1, "\u{1B}[\(color)m\(tag)\u{1B}[0m \(text)\n")
        } else {
            writeAll(1, "\(tag) \(text)\n")
        }
    }

    /// A message of `apus run` itself, on standard error.
    func note(_ text: String) {
        writeAll(2, "apus: \(text)\n")
    }
}

/// Splits bytes read from a pipe into lines, keeping an unfinished last line for later.
struct LineSplitter {
    private var partial: [UInt8] = []
    /// A line longer than this is cut, so a node writing without newlines cannot grow memory.
    static let maxLine = 64 * 1024

    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (String) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                emitPartial(emit)
            } else {
                partial.append(byte)
                if partial.count >= Self.maxLine { emitPartial(emit) }
            }
        }
    }

    /// Emits what is left (at end of stream).
    mutating func finish(_ emit: (String) -> Void) {
        if !partial.isEmpty { emitPartial(emit) }
    }

    private mutating func emitPartial(_ emit: (String) -> Void) {
        if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
        emit(String(decoding: partial, as: UTF8.self))
        partial.removeAll(keepingCapacity: true)
    }
}

/// "exited with status 1", "killed by signal 11 (SIGSEGV)".
func describeExit(signaled: Bool, value: Int32) -> String {
    guard signaled else { return "exited with status \(value)" }
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV",
        SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
    ]
    return "killed by signal \(value)" + (names[value].map { " (\($0))" } ?? "")
}
