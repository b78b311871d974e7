import Foundation
import Testing

/// `apus new` templates built and run under `apus run` as generated, and `apus build`.
@Suite(.serialized) struct NewAndBuildCommandTests {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-new-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent(path).path)
    }

    /// `apus new NAME --lang LANG --dataflow`, then `apus run NAME/dataflow.yml` for a little while.
    func generateAndRun(_ name: String, _ language: String) throws -> ApusCommand.Result {
        let created = try ApusCommand.run(["new", name, "--lang", language, "--dataflow"], in: folder)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("run it: apus run \(name)/dataflow.yml"), "\(created.stdout)")
        let check = try ApusCommand.run(["check", "\(name)/dataflow.yml"], in: folder)
        #expect(check.status == 0, "\(check.stderr)")
        return try ApusCommand.run(["run", "\(name)/dataflow.yml", "--stop-after", "1.8s", "--no-color"], in: folder)
    }

    @Test(arguments: ["c", "python"])
    func generatedNodeBuildsAndRuns(language: String) throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try generateAndRun("hello", language)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let sent = result.stdout.split(separator: "\n").filter { $0.hasPrefix("[hello] input ") && $0.contains("-> sent 'message") }
        #expect(sent.count >= 2, "\(result.stdout)\n\(result.stderr)")
        #expect(sent.first?.hasSuffix("-> sent 'message 0'") == true)
    }

    @Test func generatedCOperatorBuildsAndRuns() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let created = try ApusCommand.run(["new", "counter", "--lang", "c", "--operator", "--dataflow"], in: folder)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(exists("counter/counter.c") && exists("counter/Makefile"))
        let result = try ApusCommand.run(["run", "counter/dataflow.yml", "--stop-after", "1.3s", "--no-color"], in: folder)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("[counter] input 'tick' -> sent 'message 1'"), "\(result.stdout)\n\(result.stderr)")
        let refused = try ApusCommand.run(["new", "x", "--lang", "swift", "--operator"], in: folder)
        #expect(refused.status == 64 && refused.stderr.contains("--operator makes a C, Python or Numba operator"), "\(refused.stderr)")
    }

    /// The generated dataflow ticks every 500 ms; the tests take 50 ms, so a slow start under
    /// load still leaves time for several messages before --stop-after.
    func fasterTicks(_ file: String) throws {
        let url = folder.appendingPathComponent(file)
        try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "millis/500", with: "millis/50")
            .write(to: url, atomically: true, encoding: .utf8)
    }

    @Test func generatedPythonOperatorRuns() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let created = try ApusCommand.run(["new", "counter", "--lang", "python", "--operator", "--dataflow"], in: folder)
        #expect(created.status == 0, "\(created.stderr)")
        try fasterTicks("counter/dataflow.yml")
        let result = try ApusCommand.run(["run", "counter/dataflow.yml", "--stop-after", "4s", "--no-color"], in: folder)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("[counter] input 'tick' -> sent 'message 1'"), "\(result.stdout)\n\(result.stderr)")
    }

    /// --lang numba: a @cfunc that halves float32 samples, and a Python node that feeds it and
    /// prints what comes back.
    @Test func generatedNumbaOperatorRuns() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let created = try ApusCommand.run(["new", "amp", "--lang", "numba", "--dataflow"], in: folder)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(exists("amp/amp.py") && exists("amp/samples.py"))
        try fasterTicks("amp/dataflow.yml")
        let result = try ApusCommand.run(["run", "amp/dataflow.yml", "--stop-after", "6s", "--no-color"], in: folder)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("[amp-samples] scaled: [0.5, 1.0, 1.5, 2.0]"), "\(result.stdout)\n\(result.stderr)")
    }

    @Test func generatedSwiftNodeBuildsAndRuns() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try generateAndRun("greeter", "swift")
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("[greeter] input 'tick' -> sent 'message 0'"), "\(result.stdout)\n\(result.stderr)")
    }

    @Test func newWithoutDataflowPrintsTheNodeEntryAndRefusesExistingFoldersAndBadNames() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let created = try ApusCommand.run(["new", "probe", "--lang", "python"], in: folder)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("  - id: probe\n    path: probe/probe.py\n"), "\(created.stdout)")
        #expect(exists("probe/probe.py") && !exists("probe/dataflow.yml"))

        let again = try ApusCommand.run(["new", "probe", "--lang", "c"], in: folder)
        #expect(again.status == 1)
        #expect(again.stderr.contains("'probe' exists already; nothing was written"), "\(again.stderr)")
        #expect(!exists("probe/probe.c"))

        for (name, message) in [("bad/name", "is not a node id"), (".hidden", "is not a node id"), ("dora", "is reserved")] {
            let refused = try ApusCommand.run(["new", name, "--lang", "c"], in: folder)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains(message), "\(name): \(refused.stderr)")
        }
        let language = try ApusCommand.run(["new", "x", "--lang", "rust"], in: folder)
        #expect(language.status != 0)
        #expect(language.stderr.contains("'rust'"), "\(language.stderr)")
    }

    @Test func buildRunsTheBuildStepsOnlyAndNamesTheFailingNode() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
        nodes:
          - id: maker
            build: echo made > made.txt && apus config --cflags
            path: /bin/true
          - id: broken
            build: echo trying && exit 3
            path: /bin/true
        """.write(to: folder.appendingPathComponent("flow.yml"), atomically: true, encoding: .utf8)
        let failed = try ApusCommand.run(["build", "flow.yml", "--no-color"], in: folder)
        #expect(failed.status == 1)
        #expect(exists("made.txt"))
        #expect(failed.stdout.contains("[maker] -I\(ApusCommand.repository.path)/include"), "\(failed.stdout)")
        #expect(failed.stdout.contains("[broken] trying"), "\(failed.stdout)")
        #expect(failed.stderr.contains("build of node 'broken' failed (exited with status 3): echo trying && exit 3"), "\(failed.stderr)")
        #expect(!exists("out"), "apus build started nodes")

        let fixed = try String(contentsOf: folder.appendingPathComponent("flow.yml"), encoding: .utf8)
            .replacingOccurrences(of: "exit 3", with: "true")
        try fixed.write(to: folder.appendingPathComponent("flow.yml"), atomically: true, encoding: .utf8)
        let built = try ApusCommand.run(["build", "flow.yml", "--no-color"], in: folder)
        #expect(built.status == 0, "\(built.stderr)")
        #expect(built.stderr.contains("apus: built flow.yml: 2 build steps succeeded"), "\(built.stderr)")

        try "nodes: [}".write(to: folder.appendingPathComponent("bad.yml"), atomically: true, encoding: .utf8)
        let invalid = try ApusCommand.run(["build", "bad.yml"], in: folder)
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("bad.yml: 1 error; nothing was built"), "\(invalid.stderr)")
    }
}
