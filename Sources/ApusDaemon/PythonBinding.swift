import ApusDataflow
import Glibc

/// Makes `import apus` work in a dataflow's Python nodes with no set-up: the package is built from
/// include/apus.h (cffi, API mode) once per Python version into a folder beside the C API, again
/// only when the header, the library or the package's sources change, and that folder goes first
/// on the Python nodes' PYTHONPATH.
struct PythonBinding {
    let python: String
    let installation: Installation
    let environment: [String]
    let directory: String

    /// The folder to put on PYTHONPATH.
    func prepare() throws(SupervisorError) -> String {
        // Starting Python to learn that nothing changed costs ~0.15 s per run: a note of what the
        // last build saw (interpreter, header, library, sources, each by size and time) skips that.
        let note = "\(installation.pythonCache)/.current-\(fnv1a(python))"
        let fingerprint = self.fingerprint()
        if let fingerprint, let text = readTextFile(note, limit: 65536), text.hasPrefix(fingerprint + "\n") {
            let folder = String(text.dropFirst(fingerprint.count + 1))
            if access(folder + "/apus", F_OK) == 0 { return folder }
        }
        let folder = try build()
        if let fingerprint { _ = replaceFile(note, fingerprint + "\n" + folder) }
        return folder
    }

    /// Size and modification time of everything a build depends on; nil if something is missing.
    private func fingerprint() -> String? {
        let source = installation.pythonSource
        let interpreter = python.contains("/") ? python : searchPATH(python, in: environmentValue(environment, "PATH") ?? "/usr/bin:/bin")
        var files = [interpreter, "\(installation.includeDirectory)/apus.h", installation.libraryFile, "\(source)/apus_build.py"]
        guard let sources = listDirectory("\(source)/apus") else { return nil }
        files += sources.filter { $0.hasSuffix(".py") }.sorted().map { "\(source)/apus/\($0)" }
        var parts = [python, installation.cflags, installation.libs]
        for file in files {
            guard let file else { return nil }
            var status = stat()
            guard stat(file, &status) == 0 else { return nil }
            parts.append("\(file):\(status.st_size):\(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)")
        }
        return String(fnv1a(parts.joined(separator: "|")))
    }

    private func build() throws(SupervisorError) -> String {
        let script = installation.pythonSource + "/apus_build.py"
        let arguments = [
            python, script, "ensure", installation.pythonCache,
            "--cflags=\(installation.cflags)", "--libs=\(installation.libs)",
        ]
        let outcome: ChildProcess.Outcome
        do {
            outcome = try ChildProcess.run(arguments, environment: environment, directory: directory)
        } catch {
            throw SupervisorError("cannot run \(python) to prepare the apus Python module: \(error)")
        }
        guard outcome.succeeded, let folder = outcome.stdout.last, folder.hasPrefix("/") else {
            let status = describeExit(signaled: outcome.signaled, value: outcome.status)
            let output = (outcome.stdout + outcome.stderr).suffix(20).map { "    \($0)" }.joined(separator: "\n")
            throw SupervisorError(
                """
                cannot prepare the apus Python module for the Python nodes (\(arguments.prefix(4).joined(separator: " ")) \(status)):
                \(output)
                  It needs a C compiler and cffi and numpy for \(python): \(python) -m pip install cffi numpy
                """)
        }
        return folder
    }
}

/// 64-bit FNV-1a of a string, for short stable file names and fingerprints.
func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
    }
    return hash
}
