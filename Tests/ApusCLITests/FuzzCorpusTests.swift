import Foundation
import Testing

/// Every input of the committed fuzz corpus (crashes found once included) goes through its
/// harness in an ordinary build: what once crashed stays fixed, even without a fuzzer build.
@Suite struct FuzzCorpusTests {
    @Test(arguments: ["dataflow", "node-protocol", "daemon-request", "metadata", "network"])
    func everyCorpusInputGoesThroughItsHarness(_ name: String) throws {
        let corpus = ApusCommand.repository.appendingPathComponent("Tests/Fuzz/corpus/\(name)")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted().map { corpus.appendingPathComponent($0).path }
        #expect(!files.isEmpty, "the \(name) corpus is empty")
        let result = try ApusCommand.run(program: RunHarness.binary("apus-fuzz"), [name] + files)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout == "apus-fuzz \(name): \(files.count) inputs replayed, none crashed\n")
    }
}
