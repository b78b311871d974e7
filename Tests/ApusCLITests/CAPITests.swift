import Foundation
import Glibc
import Testing

/// The C API: include/apus.h and libApusCAPI.so, exercised by C nodes compiled with -Werror in the
/// build steps of real dataflows (Tests/CNodes/api_test.c and nodes/c/).
extension RunCommandTests {
    @Suite(.serialized) struct CAPI {
        static let header = ApusCommand.repository.appendingPathComponent("include/apus.h")
        static let library = RunHarness.binaries.appendingPathComponent("libApusCAPI.so")
        static let testSource = ApusCommand.repository.appendingPathComponent("Tests/CNodes/api_test.c")
        static let strict = "-Wall -Wextra -Wpedantic -Werror"

        static let doraHeaders = ["include/dora/node_api.h", "include/dora/operator_types.h"].map {
            ApusCommand.repository.appendingPathComponent($0)
        }

        /// The functions of dora's C node API and the helpers of its operator API that the library
        /// implements (include/dora/node_api.h, include/dora/operator_types.h).
        static func doraFunctions() throws -> [String] {
            try doraHeaders.flatMap { header in
                try String(contentsOf: header, encoding: .utf8).matches(of: /\b([a-z_]*dora_[a-z_]+) ?\(/).map { String($0.1) }
            }
        }

        /// The functions the header declares, in order: `node` ones only, the API a node calls
        /// (the operator section after CDEF-END declares what an operator defines, and the runtime).
        static func declaredFunctions(nodeOnly: Bool = false) throws -> [String] {
            var text = try String(contentsOf: header, encoding: .utf8)
            if nodeOnly, let end = text.range(of: "CDEF-END") { text = String(text[..<end.lowerBound]) }
            // Not the comment lines, which show what an operator defines.
            let code = text.split(separator: "\n").filter { !$0.hasPrefix(" *") }.joined(separator: "\n")
            let pattern = /\b(apus_[a-z0-9_]+)\(/
            var names: [String] = []
            for match in code.matches(of: pattern) where !names.contains(String(match.1)) { names.append(String(match.1)) }
            return names
        }

        /// A dataflow whose build step compiles api_test.c with -Werror through `apus config`.
        func apiTestDataflow(_ nodes: String) -> String {
            """
            nodes:
            \(nodes.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            """
        }

        func apiTestNode(_ id: String, _ role: String, _ rest: String = "") -> String {
            """
            - id: \(id)
              build: gcc -std=c99 \(Self.strict) -g -o api_test \(Self.testSource.path) $(apus config --cflags --libs)
              path: ./api_test
              args: \(role)
            \(rest)
            """
        }

        @Test func headerCompilesCleanAsC99WithGccAndClangAndAsCPlusPlus() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-header-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let source = """
                #include <apus.h>
                #include <dora/node_api.h>
                int main(void) { return apus_version() == NULL || init_dora_context_from_env() == NULL; }

                """
            try source.write(to: folder.appendingPathComponent("use.c"), atomically: true, encoding: .utf8)
            try source.write(to: folder.appendingPathComponent("use.cpp"), atomically: true, encoding: .utf8)
            let include = "-I\(Self.header.deletingLastPathComponent().path)"
            var cplusplus = 0
            for (compiler, file, standard) in [
                ("gcc", "use.c", "-std=c99"), ("clang", "use.c", "-std=c99"),
                ("g++", "use.cpp", "-std=c++11"), ("clang++", "use.cpp", "-std=c++11"),
            ] {
                let result = try ApusCommand.run(
                    program: compiler, [standard] + Self.strict.split(separator: " ").map(String.init) + [include, "-fsyntax-only", file],
                    in: folder)
                if compiler.hasSuffix("++"), result.status == 127 { continue }
                if compiler.hasSuffix("++") { cplusplus += 1 }
                #expect(result.status == 0, "\(compiler) \(standard): \(result.stderr)")
            }
            #expect(cplusplus >= 1, "no C++ compiler (g++ or clang++) found")
        }

        /// Every C and Python node loads libapus.so: it must not bring Foundation (and ICU, tens
        /// of megabytes) with it, also now that nodes write to other machines themselves.
        @Test func libraryNeedsNoFoundation() throws {
            let result = try ApusCommand.run(program: "nm", ["-D", "--undefined-only", Self.library.path])
            #expect(result.status == 0, "\(result.stderr)")
            let foundation = result.stdout.split(separator: "\n").filter { $0.contains("Foundation") }
            #expect(foundation.isEmpty, "libApusCAPI.so uses Foundation: \(foundation.prefix(3))")
        }

        @Test func libraryExportsExactlyTheFunctionsOfTheHeader() throws {
            let result = try ApusCommand.run(program: "nm", ["-D", "--defined-only", "--extern-only", Self.library.path])
            #expect(result.status == 0, "\(result.stderr)")
            let exported = Set(result.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
            let dora = try Self.doraFunctions()
            #expect(dora.count == 15)
            let declared = Set(try Self.declaredFunctions() + dora)
            #expect(declared.count >= 60)
            #expect(declared.subtracting(exported).sorted() == [], "declared but not exported")
            #expect(exported.subtracting(declared).sorted() == [], "exported but not declared")
        }

        @Test func configNamesTheBuildTreeAnInstalledPrefixOrWhatIsMissing() throws {
            let inTree = try ApusCommand.run(["config", "--cflags", "--libs"])
            #expect(inTree.status == 0, "\(inTree.stderr)")
            #expect(inTree.stdout == "-I\(ApusCommand.repository.path)/include \(Self.library.resolvingSymlinksInPath().path)\n")

            let prefix = FileManager.default.temporaryDirectory.appendingPathComponent("apus-prefix-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: prefix) }
            for folder in ["bin", "include", "lib"] {
                try FileManager.default.createDirectory(at: prefix.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            let apus = prefix.appendingPathComponent("bin/apus")
            // Copied by `cp`, not in this process: a child another test forks meanwhile would inherit
            // our descriptor open for writing, and running the copy would fail with "Text file busy".
            let copied = try ApusCommand.run(program: "cp", [ApusCommand.binary.path, apus.path])
            try #require(copied.status == 0, "\(copied.stderr)")
            let missing = try ApusCommand.run(program: apus.path, ["config", "--libs"])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no C API next to \(apus.path)"), "\(missing.stderr)")

            try FileManager.default.copyItem(at: Self.header, to: prefix.appendingPathComponent("include/apus.h"))
            try FileManager.default.copyItem(at: Self.library, to: prefix.appendingPathComponent("lib/libapus.so"))
            let installed = try ApusCommand.run(program: apus.path, ["config", "--cflags", "--libs", "--include-dir", "--lib-dir"])
            #expect(installed.status == 0, "\(installed.stderr)")
            let p = prefix.path
            #expect(installed.stdout == "-I\(p)/include -L\(p)/lib -lapus -Wl,-rpath,\(p)/lib \(p)/include \(p)/lib\n")

            let nothing = try ApusCommand.run(["config"])
            #expect(nothing.status == 64 && nothing.stderr.contains("--cflags, --libs"))
        }

        @Test func theCTestNodeCallsEveryFunctionOfTheHeader() throws {
            let source = try String(contentsOf: Self.testSource, encoding: .utf8)
            let missing = try Self.declaredFunctions(nodeOnly: true).filter { !source.contains("\($0)(") }
            #expect(missing == [])
        }

        @Test func cNodesUseEveryFunctionTypeAndParameterAndTheBoundaryCasesInADataflow() throws {
            let harness = try RunHarness(
                dataflow: apiTestDataflow(
                    apiTestNode("producer", "producer", "  outputs: [data, spare]") + "\n"
                        + apiTestNode(
                            "consumer", "consumer",
                            """
                              inputs:
                                data: {source: producer/data, queue_size: 32}
                                spare: producer/spare
                            """)))
            let result = try harness.run()
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            let producer = result.lines(of: "producer")
            #expect(producer.contains { $0.hasPrefix("producer: ok, ") }, "\(producer)")
            #expect(result.lines(of: "consumer").contains { $0.hasPrefix("consumer: ok, ") }, "\(result.lines(of: "consumer"))")
            // apus_node_log: one line per call on stderr, shown with the node's name and kept in its log.
            for line in ["ERROR log at error", "WARN  log at warn", "INFO  log at info", "DEBUG log at debug"] {
                #expect(producer.contains(line))
                #expect(try harness.log(of: "producer").contains(line))
            }
            harness.expectClean()
        }

        @Test func cNodeStartedByHandIsToldToUseApusRun() throws {
            let harness = try RunHarness(dataflow: apiTestDataflow(apiTestNode("outside", "outside")))
            let build = try ApusCommand.run(
                program: "/bin/sh",
                [
                    "-c",
                    "gcc -std=c99 \(Self.strict) -o api_test \(Self.testSource.path) $(\(ApusCommand.binary.path) config --cflags --libs)",
                ],
                in: harness.folder)
            #expect(build.status == 0, "\(build.stderr)")
            let result = try ApusCommand.run(
                program: harness.folder.appendingPathComponent("api_test").path, ["outside"], in: harness.folder)
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stdout.hasPrefix("outside: ok"))
        }

        @Test func cConsumerGetsNodeFailedBeforeItsInputCloses() throws {
            let harness = try RunHarness(
                dataflow: apiTestDataflow(
                    apiTestNode("crash", "crash", "  outputs: [out]") + "\n"
                        + apiTestNode("watcher", "watcher", "  inputs: {in: crash/out}")))
            let result = try harness.run()
            #expect(result.status == 1)
            let watcher = result.lines(of: "watcher")
            #expect(watcher.contains("watcher: node 'crash' exited with status 3; closing inputs 'in'"), "\(watcher)")
            #expect(watcher.last?.hasPrefix("watcher: ok, ") == true, "\(result.stdout)\n\(result.stderr)")
            harness.expectClean()
        }

        @Test func cConsumerSleepingOnHeldEventsDoesNotHoldUpAnotherConsumer() throws {
            // `hoarder` keeps every event it gets (and its shared memory) while it sleeps; its
            // drop_oldest queue of 4 loses messages. `fast` (taking them in batches) must still get
            // all 200, in order.
            let harness = try RunHarness(
                dataflow: apiTestDataflow(
                    apiTestNode("burst", "burst", "  outputs: [out]") + "\n"
                        + apiTestNode("hoarder", "hoarder", "  inputs: {in: {source: burst/out, queue_size: 4}}") + "\n"
                        + apiTestNode("fast", "fast", "  inputs: {in: burst/out}")))
            let result = try harness.run()
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.lines(of: "fast").first?.hasPrefix("fast: received 200 of 200 in order") == true, "\(result.stdout)")
            #expect(result.lines(of: "hoarder").last?.hasPrefix("hoarder: ok") == true, "\(result.stdout)")
            #expect(result.lines(of: "burst").last?.hasPrefix("burst: ok") == true, "\(result.stdout)")
            harness.expectClean()
        }

        @Test func readmeCNodeBuildsAndRunsAsShown() throws {
            let readme = try String(contentsOf: ApusCommand.repository.appendingPathComponent("README.md"), encoding: .utf8)
            let code = try #require(readme.firstMatch(of: /```c\n(\/\* doubler\.c \*\/\n[\s\S]*?)```/)?.1)
            let yaml = try #require(readme.firstMatch(of: /```yaml\n# doubler\.yml[^\n]*\n([\s\S]*?)```/)?.1)
            // The README's node between a producer of floats and a checker of the doubled values.
            let harness = try RunHarness(
                dataflow: String(yaml)
                    + apiTestDataflow(
                        apiTestNode("producer", "floats", "  outputs: [values]") + "\n"
                            + apiTestNode("checker", "doubled", "  inputs: {in: doubler/out}")
                    ).dropFirst("nodes:\n".count))
            try String(code).write(to: harness.folder.appendingPathComponent("doubler.c"), atomically: true, encoding: .utf8)
            let result = try harness.run()
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.lines(of: "checker").last?.hasPrefix("doubled: ok") == true, "\(result.stdout)")
            harness.expectClean()
        }

        @Test func cameraFilterSinkExampleRuns() throws {
            // The dataflow's build step runs `swift build`, which would wait for this `swift test` to
            // release the build folder: build the nodes here and run without build steps.
            let make = try ApusCommand.run(program: "make", ["-C", "nodes/c", "APUS=\(ApusCommand.binary.path)"])
            try #require(make.status == 0, "\(make.stdout)\n\(make.stderr)")
            let harness = try RunHarness(dataflow: "nodes: []")
            try harness.start(["--no-build"], file: "dataflows/camera-c.yml", in: ApusCommand.repository)
            let result = try harness.wait()
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.lines(of: "camera").contains("camera: sent 90 frames of 640x480"))
            #expect(result.lines(of: "sink").contains { $0.contains("frames/s, latency p50") })
            let summary = try #require(result.lines(of: "sink").last?.firstMatch(of: /sink: received (\d+) frames, (\d+) skipped/))
            #expect(Int(summary.1)! > 0 && Int(summary.1)! + Int(summary.2)! <= 90)
            harness.expectClean()
        }

        @Test func cNodesRunUnderValgrindWithoutInvalidAccessOrDefiniteLeaks() throws {
            // valgrind 3.19 cannot read the DWARF 5 of Swift's debug builds, so the nodes link a copy
            // of the library without debug info; the C code is compiled with DWARF 4.
            let harness = try RunHarness(dataflow: "nodes: []")
            let folder = harness.folder
            let prepare = """
                objcopy --strip-debug \(Self.library.path) libApusCAPI.so && \
                for node in camera filter sink; do \
                  gcc -std=c99 \(Self.strict) -g -gdwarf-4 -O1 -I\(Self.header.deletingLastPathComponent().path) \
                    -o $node \(ApusCommand.repository.path)/nodes/c/$node.c $PWD/libApusCAPI.so || exit 1; \
                done && \
                gcc -std=c99 \(Self.strict) -g -gdwarf-4 -I\(Self.header.deletingLastPathComponent().path) \
                  -o api_test \(Self.testSource.path) $PWD/libApusCAPI.so && \
                printf '#include <stdlib.h>\\nint main(void) { return malloc(64) == NULL; }\\n' > leak.c && gcc -g -gdwarf-4 -o leak leak.c
                """
            let build = try ApusCommand.run(program: "/bin/sh", ["-c", prepare], in: folder)
            try #require(build.status == 0, "\(build.stderr)")
            let memcheck = "--error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite -q"
            // The same options catch a definite leak: the check can fail.
            let control = try ApusCommand.run(program: "valgrind", memcheck.split(separator: " ").map(String.init) + ["./leak"], in: folder)
            #expect(control.status == 99, "\(control.stderr)")

            func node(_ id: String, _ program: String, _ rest: String) -> String {
                "  - id: \(id)\n    path: valgrind\n    args: \(memcheck) ./\(program)\n\(rest)"
            }
            let yaml = """
                nodes:
                \(node("camera", "camera", "    inputs: {tick: apus/timer/millis/50}\n    outputs: [frame]\n    env: {WIDTH: 64, HEIGHT: 48, FRAMES: 20}"))
                \(node("filter", "filter", "    inputs: {frame: {source: camera/frame, queue_policy: backpressure}}\n    outputs: [mask]"))
                \(node("sink", "sink", "    inputs: {mask: {source: filter/mask, queue_policy: backpressure}}"))
                \(node("producer", "api_test producer", "    outputs: [data, spare]"))
                \(node("consumer", "api_test consumer", "    inputs: {data: {source: producer/data, queue_size: 32}, spare: producer/spare}"))
                """
            try yaml.write(to: folder.appendingPathComponent("dataflow.yml"), atomically: true, encoding: .utf8)
            let result = try harness.run(["--startup-timeout", "60"], timeout: 240)
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.lines(of: "sink").last == "sink: received 20 frames, 0 skipped", "\(result.stdout)")
            #expect(result.lines(of: "consumer").last?.hasPrefix("consumer: ok") == true, "\(result.stdout)")
            #expect(!result.stdout.contains("Invalid read") && !result.stdout.contains("Invalid write"))
            harness.expectClean()
        }
    }
}
