import ApusDaemon
import ArgumentParser
import Glibc

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Create a node in C, C++, Python or Swift, or an operator in C, C++, Python or Numba (with --dataflow, and a dataflow that runs it).",
        discussion: """
            Makes the folder NAME with a node that, on each input, sends "message N" on its output \
            `out` and prints what it did. Without --dataflow it prints the lines to add to a dataflow \
            file; with it, NAME/dataflow.yml drives the node from a 500 ms timer: \
            `apus run NAME/dataflow.yml` builds and runs it. A Swift node depends on the ApusNode \
            library of this apus's source tree; a C++ node (include/apus.hpp) builds with CMake, \
            finding apus through `apus config --cmake-dir`. With --operator NAME is an operator instead, hosted by a \
            runtime node of the same name whose output is NAME/out: in C or C++, NAME/libNAME.so; in Python, \
            NAME/NAME.py with dora's class Operator. --lang numba makes a Numba operator: NAME/NAME.py \
            with a numba @cfunc that scales float32 samples, fed by NAME/samples.py, a Python node \
            that prints what comes back.
            """
    )

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case c, cpp, python, swift, numba
    }

    @Argument(help: "The node's id and folder name (letters, digits, _ . -).")
    var name: String

    @Option(
        help: "The language: c, cpp, python or swift (a node or, with --operator, a C, C++ or Python operator), or numba (an operator).")
    var lang: Language

    @Flag(help: "Also write NAME/dataflow.yml around the node.")
    var dataflow = false

    @Flag(
        help: ArgumentHelp(
            "Make an operator instead of a node: a C shared library with Apus's operator ABI, or a Python file with dora's class Operator."
        ))
    var `operator` = false

    func validate() throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        guard !name.isEmpty, name.allSatisfy(allowed.contains), !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw ValidationError("'\(name)' is not a node id: use letters, digits, _ . - (not first . or -)")
        }
        guard !["apus", "dora"].contains(name.lowercased()) else { throw ValidationError("'\(name)' is reserved") }
        if `operator`, lang == .swift {
            throw ValidationError(
                "--operator makes a C, Python or Numba operator; Swift code runs as a node (a Wasm operator: apus wasm-cc)")
        }
        if lang == .swift, name.first!.isNumber || name.contains(".") {
            throw ValidationError("a Swift node's name must not start with a digit or contain '.' (it names a Swift target)")
        }
    }

    func run() throws {
        var status = stat()
        guard stat(name, &status) != 0 else {
            printError("apus new: '\(name)' exists already; nothing was written")
            throw ExitCode(1)
        }
        let template = try files()
        guard mkdir(name, 0o755) == 0 else {
            printError("apus new: cannot create folder '\(name)': \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        var written: [String] = []
        for (path, text) in template.files + (dataflow ? [("dataflow.yml", "nodes:\n" + template.node)] : []) {
            let full = "\(name)/\(path)"
            if let slash = full.lastIndex(of: "/"), !mkdirs(String(full[..<slash])) {
                printError("apus new: cannot create the folder of \(full)")
                throw ExitCode(1)
            }
            guard createFile(full, text) else {
                printError("apus new: cannot write \(full): \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            written.append(full)
        }
        print("created \(written.joined(separator: ", "))")
        if dataflow {
            print("run it: apus run \(name)/dataflow.yml")
        } else {
            print("add it to a dataflow file next to the folder '\(name)':\n")
            print(
                template.node.replacingOccurrences(of: "    build: ", with: "    build: cd \(name) && ")
                    .replacingOccurrences(of: "    path: ", with: "    path: \(name)/")
                    .replacingOccurrences(of: "shared-library: ", with: "shared-library: \(name)/")
                    .replacingOccurrences(of: "python: ", with: "python: \(name)/")
                    .replacingOccurrences(of: "numba: ", with: "numba: \(name)/"))
        }
    }

    /// A runtime node of one operator, `kind` its kind line(s).
    private func operatorEntry(_ kind: String, inputs source: String = "apus/timer/millis/500", output: String = "out") -> String {
        """
          - id: \(name)
            operator:
              id: \(name)
              \(kind)
              inputs:
                \(source == "apus/timer/millis/500" ? "tick" : "samples"): \(source)
              outputs: [\(output)]

        """
    }

    /// The node's files and its entry in a dataflow file placed in the node's folder.
    private func files() throws -> (files: [(String, String)], node: String) {
        let inputs = """
                inputs:
                  tick: apus/timer/millis/500
                outputs: [out]

            """
        switch lang {
        case .c where `operator`:
            return (
                [
                    ("\(name).c", cOperatorSource),
                    (
                        "Makefile",
                        "lib\(name).so: \(name).c\n\tcc -std=c99 -Wall -Wextra -O2 -shared -fPIC -o $@ $< $$(apus config --cflags)\n"
                    ),
                ],
                """
                  - id: \(name)
                    operator:
                      id: \(name)
                      build: make
                      shared-library: \(name)
                      inputs:
                        tick: apus/timer/millis/500
                      outputs: [out]

                """
            )
        case .c:
            return (
                [
                    ("\(name).c", cSource),
                    ("Makefile", "\(name): \(name).c\n\tcc -std=c99 -Wall -Wextra -O2 -o $@ $< $$(apus config --cflags --libs)\n"),
                ],
                "  - id: \(name)\n    build: make\n    path: \(name)\n" + inputs
            )
        case .cpp:
            let build = "cmake -S . -B build -Dapus_DIR=$(apus config --cmake-dir) && cmake --build build"
            let files = [
                ("\(name).cpp", `operator` ? cppOperatorSource : cppSource), ("CMakeLists.txt", cmakeLists(operator: `operator`)),
                (".gitignore", "build/\nout/\n"),
            ]
            if `operator` {
                return (files, operatorEntry("build: \(build)\n      shared-library: \(name)"))
            }
            return (files, "  - id: \(name)\n    build: \(build)\n    path: \(name)\n" + inputs)
        case .python where `operator`:
            return ([("\(name).py", pythonOperatorSource)], operatorEntry("python: \(name).py"))
        case .python:
            return ([("\(name).py", pythonSource)], "  - id: \(name)\n    path: \(name).py\n" + inputs)
        case .numba:
            let samples = """
                  - id: \(name)-samples
                    path: samples.py
                    inputs:
                      tick: apus/timer/millis/500
                      scaled: \(name)/scaled
                    outputs: [samples]

                """
            let entry = operatorEntry(
                "numba: \(name).py:scale\n      params: { factor: 0.5 }", inputs: "\(name)-samples/samples", output: "scaled")
            return ([("\(name).py", numbaSource), ("samples.py", numbaSamplesSource)], samples + entry)
        case .swift:
            let installation: Installation
            do {
                installation = try Installation.locate()
            } catch {
                printError("apus new: \(error)")
                throw ExitCode(1)
            }
            guard let tree = installation.sourceTree else {
                printError(
                    "apus new: a Swift node needs the apus source tree (its ApusNode package); this apus is installed in a prefix without it"
                )
                throw ExitCode(1)
            }
            let package = tree.split(separator: "/").last.map(String.init) ?? "apus"
            let manifest = """
                // swift-tools-version: 6.1
                import PackageDescription

                let package = Package(
                    name: "\(name)",
                    dependencies: [.package(path: "\(tree)")],
                    targets: [
                        .executableTarget(name: "\(name)", dependencies: [.product(name: "ApusNode", package: "\(package)")], path: "Sources")
                    ]
                )

                """
            return (
                [("Package.swift", manifest), ("Sources/main.swift", swiftSource), (".gitignore", ".build/\nout/\n")],
                "  - id: \(name)\n    build: swift build --product \(name)\n    path: .build/debug/\(name)\n" + inputs
            )
        }
    }
}
