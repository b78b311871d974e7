import ApusDataflow
import ArgumentParser
import Logging

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate dataflow files and report every problem with its position.",
        discussion: """
            For each valid file prints one line: its nodes, edges and timers. For an invalid file \
            prints every problem as FILE:LINE:COLUMN: node 'ID': key: message. Exits 1 if any file \
            is invalid. Node paths must exist unless the node has a `build` step. Declared types \
            (output_types, input_types) that do not fit are printed as warnings: errors with \
            --strict-types or `strict_types: true` in the file.
            """
    )

    @Argument(help: "Dataflow files to check.", completion: .file(extensions: ["yml", "yaml"]))
    var files: [String]

    @Flag(help: "Count type warnings (declared types that do not fit) as errors.")
    var strictTypes = false

    @Flag(name: .shortAndLong, help: "Log how long each file took to check.")
    var verbose = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("Name at least one dataflow file.") }
    }

    func run() throws {
        let logger = CommandLogger.make(label: "apus.check", verbose: verbose)
        let loader = DataflowLoader()
        var invalid = 0
        for file in files {
            let clock = ContinuousClock()
            let start = clock.now
            do {
                let dataflow = try loader.load(file: file)
                for warning in dataflow.warnings { printError("\(strictTypes ? "" : "warning: ")\(warning.description)") }
                if strictTypes, !dataflow.warnings.isEmpty {
                    let count = dataflow.warnings.count
                    printError("\(file): \(count) type error\(count == 1 ? "" : "s") (--strict-types)")
                    invalid += 1
                } else {
                    print("\(file): ok (\(dataflow.summary))")
                }
            } catch {
                for diagnostic in error.diagnostics { printError(diagnostic.description) }
                let count = error.diagnostics.count
                printError("\(file): \(count) error\(count == 1 ? "" : "s")")
                invalid += 1
            }
            logger.debug("checked \(file) in \(clock.now - start)")
        }
        if invalid > 0 { throw ExitCode(1) }
    }
}
