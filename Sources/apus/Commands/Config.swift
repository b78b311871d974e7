import ApusDaemon
import ArgumentParser

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the compiler and linker flags for building a C or C++ node against this apus.",
        discussion: """
            Prints the requested flags on one line, for use in a build command, e.g.
              cc -std=c99 -o node node.c $(apus config --cflags --libs)
            `apus run` puts this apus first on PATH for the build steps of a dataflow, so the same \
            line works there. The header and library are found next to the apus executable: in an \
            installed prefix (include/, lib/) or in the source tree it was built in.
            """
    )

    @Flag(help: "The compiler flags (include path of apus.h).")
    var cflags = false

    @Flag(help: "The linker flags (libapus).")
    var libs = false

    @Flag(help: "The folder holding apus.h.")
    var includeDir = false

    @Flag(help: "The folder holding the library.")
    var libDir = false

    @Flag(help: "The folder holding apusConfig.cmake, for CMake's find_package(apus) (-Dapus_DIR=...).")
    var cmakeDir = false

    func validate() throws {
        if !(cflags || libs || includeDir || libDir || cmakeDir) {
            throw ValidationError("Name what to print: --cflags, --libs, --include-dir, --lib-dir or --cmake-dir.")
        }
    }

    func run() throws {
        let installation: Installation
        do {
            installation = try Installation.locate()
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        var parts: [String] = []
        if cflags { parts.append(installation.cflags) }
        if libs { parts.append(installation.libs) }
        if includeDir { parts.append(installation.includeDirectory) }
        if libDir { parts.append(installation.libraryDirectory) }
        if cmakeDir { parts.append(installation.cmakeDirectory) }
        print(parts.joined(separator: " "))
    }
}
