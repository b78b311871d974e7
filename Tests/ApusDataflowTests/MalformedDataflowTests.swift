import Foundation
import Testing

@testable import ApusDataflow

/// Every file under Fixtures/invalid states its exact diagnostics in `# expect:` lines;
/// `{dir}` stands for the fixture folder. The loader must report exactly those, in that order.
@Suite struct MalformedDataflowTests {
    static let folder = Fixtures.url.appendingPathComponent("invalid")

    static let files: [String] =
        (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?
        .filter { $0.hasSuffix(".yml") }.sorted() ?? []

    @Test func corpusCoversAtLeastTwentyFiveMalformedFiles() {
        #expect(Self.files.count >= 25)
    }

    @Test(arguments: files)
    func reportsExactDiagnostics(file: String) throws {
        let path = Self.folder.appendingPathComponent(file).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let expected = text.split(separator: "\n")
            .filter { $0.hasPrefix("# expect: ") }
            .map { $0.dropFirst("# expect: ".count).replacingOccurrences(of: "{dir}", with: Self.folder.path) }
        #expect(!expected.isEmpty, "\(file) states no expected diagnostic")

        let loader = DataflowLoader(environment: Fixtures.environment)
        let error = #expect(throws: DataflowErrors.self) { try loader.load(file: path) }
        #expect(error?.diagnostics.map(\.positionedMessage) == expected)
        #expect(error?.diagnostics.allSatisfy { $0.file == path } == true)
    }

    @Test func unreadableFilesAreReportedWithoutAPosition() throws {
        let missing = Self.folder.appendingPathComponent("no-such-file.yml").path
        let error = #expect(throws: DataflowErrors.self) { try DataflowLoader().load(file: missing) }
        #expect(error?.diagnostics.map(\.description) == ["\(missing): no such file"])

        let folderError = #expect(throws: DataflowErrors.self) { try DataflowLoader().load(file: Self.folder.path) }
        #expect(folderError?.diagnostics.map(\.description) == ["\(Self.folder.path): is a folder, not a dataflow file"])
    }

    @Test func diagnosticRendersFileLineColumnNodeAndContext() {
        let diagnostic = DataflowDiagnostic(
            file: "dataflows/bad.yml", line: 14, column: 9, node: "detector", context: ["input 'frame'"],
            message: "source 'camra/frame' names no node (nodes: camera, planner)")
        #expect(
            diagnostic.description
                == "dataflows/bad.yml:14:9: node 'detector': input 'frame': source 'camra/frame' names no node (nodes: camera, planner)")
    }
}

enum Fixtures {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let environment = ["PATH": "/usr/bin:/bin", "HOME": "/home/robot", "APUS_TEST_FPS": "30"]

    static func load(_ yaml: String, environment: [String: String] = Fixtures.environment) throws(DataflowErrors)
        -> DataflowDescriptor
    {
        try DataflowLoader(environment: environment).parse(yaml: yaml, file: "test.yml", directory: url.path)
    }

    static func diagnostics(_ yaml: String) -> [String] {
        do {
            _ = try load(yaml)
            return []
        } catch {
            return error.diagnostics.map(\.positionedMessage)
        }
    }
}
