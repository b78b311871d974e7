import ApusDaemon
import ArgumentParser
import Glibc

struct WasmCC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm-cc",
        abstract: "Compile a C Wasm operator: clang for wasm32 with the guest header (apus_wasm.h).",
        discussion: """
            Runs clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -I<apus include> followed by \
            ARGUMENTS, e.g.  apus wasm-cc threshold.c -o build/threshold.wasm
            The guest has no libc: it uses include/apus_wasm.h and the functions it declares. The \
            clang is the first on PATH that has wasm-ld beside it (the Swift toolchain's has).
            """
    )

    @Argument(parsing: .captureForPassthrough, help: "Sources and clang options, passed on as they are.")
    var arguments: [String] = []

    func run() throws {
        if arguments == ["--help"] || arguments == ["-h"] {
            print(Self.helpMessage())
            return
        }
        guard !arguments.isEmpty else { throw ValidationError("Name the C source(s) and the output, e.g. apus wasm-cc op.c -o op.wasm") }
        let installation: Installation
        do {
            installation = try Installation.locate()
        } catch {
            printError("apus wasm-cc: \(error)")
            throw ExitCode(1)
        }
        let folders = (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        guard let folder = folders.first(where: { access("\($0)/clang", X_OK) == 0 && access("\($0)/wasm-ld", X_OK) == 0 }) else {
            printError("apus wasm-cc: no clang with wasm-ld beside it on PATH (the Swift toolchain's clang has both)")
            throw ExitCode(1)
        }
        let command =
            ["\(folder)/clang", "--target=wasm32", "-O2", "-nostdlib", "-Wl,--no-entry", "-I\(installation.includeDirectory)"]
            + arguments
        var argv = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        execv(command[0], &argv)
        printError("apus wasm-cc: cannot run \(command[0]): \(String(cString: strerror(errno)))")
        throw ExitCode(1)
    }
}
