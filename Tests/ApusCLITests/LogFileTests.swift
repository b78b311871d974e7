import Foundation
import Glibc
import Testing

/// The nodes' log files: where they go, and what happens when one cannot be written.
@Suite(.serialized) struct LogFileTests {
    let node = RunHarness.testNode

    @Test func logDirPutsEveryNodeLogInTheChosenFolder() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 2 --then-exit
                    outputs: [out]
                """)
        let result = try harness.run(["--log-dir", "logs"])
        #expect(result.status == 0, "\(result.stderr)")
        let log = try String(contentsOf: harness.folder.appendingPathComponent("logs/source.log"), encoding: .utf8)
        #expect(log.contains("sent 2, exiting"), "\(log)")
        #expect(result.stderr.contains("logs in \(harness.folder.path)/logs/"), "\(result.stderr)")
        harness.expectClean()
    }

    /// A log file that cannot be created is said, naming the node and the file; the node's
    /// output still reaches the console, and the run goes on.
    @Test func aLogFileThatCannotBeCreatedIsReportedAndTheOutputStillShown() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 2 --then-exit
                    outputs: [out]
                """)
        // A folder where the log file should be: opening it for writing fails (EISDIR), even as root.
        try FileManager.default.createDirectory(
            at: harness.folder.appendingPathComponent("logs/source.log"), withIntermediateDirectories: true)
        let result = try harness.run(["--log-dir", "logs"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("node 'source': cannot create its log file"), "\(result.stderr)")
        #expect(result.stderr.contains("logs/source.log: Is a directory; its output is shown here only"), "\(result.stderr)")
        #expect(result.lines(of: "source") == ["sent 2, exiting"])
        harness.expectClean()
    }

    /// A full disk (a 1 MiB tmpfs as the log folder): the failed write is said once, and every
    /// line still reaches the console.
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func aFullDiskForTheLogsLosesNoLineOnTheConsole() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: chatty
                    path: \(node)
                    args: --flood 40000 --then-exit
                """)
        let logs = harness.folder.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        guard system("mount -t tmpfs -o size=1m apus-test-logs \(logs.path)") == 0 else {
            Issue.record("cannot mount a tmpfs at \(logs.path)")
            return
        }
        defer { _ = system("umount \(logs.path)") }
        let result = try harness.run(["--log-dir", "logs"])
        #expect(result.status == 0, "\(result.stderr)")
        let notes = result.stderr.split(separator: "\n").filter { $0.contains("cannot write its log file") }
        #expect(notes.count == 1, "\(result.stderr)")
        #expect(notes.first?.contains("No space left on device") == true, "\(result.stderr)")
        let lines = result.lines(of: "chatty")
        #expect(lines.filter { $0.hasPrefix("flood line ") }.count == 40000)
        #expect(lines.last == "sent 0, exiting")
        harness.expectClean()
    }
}
