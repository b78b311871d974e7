import Foundation

/// Runs the built `apus` binary and captures what it prints.
struct ApusCommand {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `apus` built next to this test bundle (SwiftPM builds it as a dependency of the tests).
    static let binary: URL = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("apus")
        if FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        return repository.appendingPathComponent(".build/debug/apus")
    }()

    static func run(
        _ arguments: [String], in directory: URL = repository, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Result {
        try run(program: binary.path, arguments, in: directory, environment: environment)
    }

    /// Runs any program (found on PATH when `program` has no slash) and captures its output.
    static func run(
        program: String, _ arguments: [String], in directory: URL = repository,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Result {
        // Files rather than pipes: a large output cannot stall the child while we wait.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let stdoutURL = folder.appendingPathComponent("stdout")
        let stderrURL = folder.appendingPathComponent("stderr")
        var child: Spawned
        do {
            child = try Spawned.start(
                program, arguments, directory: directory, environment: environment, stdout: stdoutURL, stderr: stderrURL)
        } catch {
            return Result(status: 127, stdout: "", stderr: "\(error)")
        }
        let status = child.wait(timeout: 300) ?? -1
        return Result(
            status: status,
            stdout: try String(contentsOf: stdoutURL, encoding: .utf8),
            stderr: try String(contentsOf: stderrURL, encoding: .utf8))
    }
}
