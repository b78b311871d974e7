import Foundation
import Glibc
import Testing

/// Runs `apus run` on a dataflow written into a fresh folder, as a user would, and checks what
/// a run must leave behind: no node process and no shared memory.
///
/// Every process of the run inherits a unique `APUS_TEST_TAG`, so leftovers are found in /proc.
final class RunHarness {
    static let binaries = ApusCommand.binary.deletingLastPathComponent()
    static func binary(_ name: String) -> String { binaries.appendingPathComponent(name).path }
    static var testNode: String { binary("apus-test-node") }

    /// What apus-api-node's consumer checks in each message its producer sends, in order: every
    /// element type, then parameters and a zero-copy sample. It prints "ok <check>" for each that holds.
    static let apiNodeChecks = [
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64", "bool", "utf8",
        "parameters", "allocate",
    ]

    /// The node `source` of a dataflow's `nodes:` list: apus-test-node sending `count` int64
    /// messages on `out`, one per tick (its seq in the metadata).
    static func tickingSource(count: Int = 10, millis: Int = 20) -> String {
        """
          - id: source
            path: \(testNode)
            args: --send \(count) --on-tick
            inputs: { tick: apus/timer/millis/\(millis) }
            outputs: [out]
        """
    }

    let folder: URL
    let tag = "apus-test-\(UUID().uuidString)"
    let shmBefore: Set<String>
    private(set) var process: Spawned?
    private let stdoutURL: URL
    private let stderrURL: URL

    struct Result {
        var status: Int32
        /// CPU time of `apus run` and the nodes it reaped, in seconds.
        var cpuSeconds: Double = 0
        var stdout: String
        var stderr: String
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }

        /// Every message the run reported lost on the inputs of `nodes` (dropped, queued for a node
        /// when it died, sent while it was gone).
        func reportedLosses(of nodes: [String]) -> Int {
            stderr.split(separator: "\n").filter { line in nodes.contains { line.hasPrefix("apus: node '\($0)' input ") } }.reduce(0) {
                total, line in
                total
                    + line.matches(of: /(\d+) messages? (?:dropped|was queued|were queued|was sent|were sent)/).reduce(0) {
                        $0 + Int($1.1)!
                    }
            }
        }

        /// The lines a node printed, without the `[node] ` prefix.
        func lines(of node: String) -> [String] {
            lines.compactMap { $0.hasPrefix("[\(node)] ") ? String($0.dropFirst(node.count + 3)) : nil }
        }
    }

    init(dataflow yaml: String) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-run-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try yaml.write(to: folder.appendingPathComponent("dataflow.yml"), atomically: true, encoding: .utf8)
        stdoutURL = folder.appendingPathComponent("stdout")
        stderrURL = folder.appendingPathComponent("stderr")
        shmBefore = Self.shmEntries()
    }

    deinit {
        killLeftovers()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Starts `apus run dataflow.yml` with `arguments` in the dataflow's folder.
    func start(_ arguments: [String] = [], file: String? = nil, in directory: URL? = nil, environment extra: [String: String] = [:]) throws
    {
        var environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        environment["APUS_TEST_TAG"] = tag
        process = try Spawned.start(
            ApusCommand.binary.path, ["run", file ?? "dataflow.yml", "--no-color"] + arguments, directory: directory ?? folder,
            environment: environment, stdout: stdoutURL, stderr: stderrURL)
    }

    /// Waits for `apus run` to exit (killing everything after `timeout` seconds).
    func wait(timeout: Double = 60) throws -> Result {
        guard var process else { throw HarnessError("not started") }
        let status = process.wait(timeout: timeout)
        self.process = process
        guard let status else {
            killLeftovers()
            throw HarnessError("apus run did not exit within \(timeout) s; output:\n\(output.stdout)\n\(output.stderr)")
        }
        var result = output
        result.status = status
        result.cpuSeconds = process.cpuSeconds ?? 0
        return result
    }

    /// Runs to the end in one go.
    func run(_ arguments: [String] = [], timeout: Double = 60) throws -> Result {
        try start(arguments)
        return try wait(timeout: timeout)
    }

    var output: Result {
        Result(
            status: -1, stdout: (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "")
    }

    /// Waits until `apus run` printed a line containing `text`.
    func waitForOutput(_ text: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.stdout.contains(text) { return }
            usleep(20_000)
        }
        throw HarnessError("no output containing '\(text)' within \(timeout) s:\n\(output.stdout)\n\(output.stderr)")
    }

    /// Seconds from when `start` shows in the output until every line of `ends` does.
    func seconds(from start: String, until ends: [String], timeout: Double = 10) throws -> Double {
        try waitForOutput(start, timeout: 60)
        let started = monotonicSeconds()
        for end in ends { try waitForOutput(end, timeout: timeout) }
        return monotonicSeconds() - started
    }

    func signal(_ number: Int32) {
        if let process { kill(process.pid, number) }
    }

    /// Processes of this run still alive (the tag is in their environment).
    func survivors() -> [Int32] {
        let own = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard pid != own, let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            guard String(decoding: environment, as: UTF8.self).contains("APUS_TEST_TAG=\(tag)") else { return false }
            // A zombie is already dead; it waits for its parent to reap it.
            let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return !(status.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? false)
        }
    }

    /// The pid of node `id` of the run, from the environment `apus run` gave it.
    func pid(ofNode id: String) -> Int32? {
        survivors().first { pid in
            let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data()
            return String(decoding: environment, as: UTF8.self).split(separator: "\0").contains("APUS_NODE_ID=\(id)")
        }
    }

    /// Survivors after waiting up to `timeout` seconds for them to go.
    func survivors(after timeout: Double) -> [Int32] {
        let deadline = Date().addingTimeInterval(timeout)
        var left = survivors()
        while !left.isEmpty && Date() < deadline {
            usleep(50_000)
            left = survivors()
        }
        return left
    }

    /// New entries in /dev/shm since the harness was made (memfds never appear there).
    func newSharedMemory() -> Set<String> {
        Self.shmEntries().subtracting(shmBefore)
    }

    /// Expects what every run must leave: no process of it, and nothing new in /dev/shm.
    func expectClean(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(survivors(after: 2).isEmpty, "processes left behind", sourceLocation: sourceLocation)
        #expect(newSharedMemory().isEmpty, "shared memory left in /dev/shm", sourceLocation: sourceLocation)
    }

    func log(of node: String) throws -> String {
        let out = folder.appendingPathComponent("out")
        let runs = try FileManager.default.contentsOfDirectory(atPath: out.path)
        guard let run = runs.sorted().last else { throw HarnessError("no run folder in \(out.path)") }
        return try String(contentsOf: out.appendingPathComponent(run).appendingPathComponent("\(node).log"), encoding: .utf8)
    }

    private func killLeftovers() {
        for pid in survivors() { kill(pid, SIGKILL) }
    }

    private static func shmEntries() -> Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
