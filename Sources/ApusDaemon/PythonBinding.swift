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
        let script = installation.pythonSource + "/apus_build.py"
        let arguments = [python, script, "ensure", installation.pythonCache,
                         "--cflags=\(installation.cflags)", "--libs=\(installation.libs)"]
        let outcome: ChildProcess.Outcome
        do {
            outcome = try ChildProcess.run(arguments, environment: environment, directory: directory)
        } catch {
            throw SupervisorError("cannot run \(python) to prepare the apus Python module: \(error)")
        }
        guard outcome.succeeded, let folder = outcome.stdout.last, folder.hasPrefix("/") else {
            let status = describeExit(signaled: outcome.signaled, value: outcome.status)
            let output = (outcome.stdout + outcome.stderr).suffix(20).map { "    \($0)" }.joined(separator: "\n")
            throw SupervisorError("""
                cannot prepare the apus Python module for the Python nodes (\(arguments.prefix(4).joined(separator: " ")) \(status)):
                \(output)
                  It needs a C compiler and cffi and numpy for \(python): \(python) -m pip install cffi numpy
                """)
        }
        return folder
    }
}
