// The CPython that Python and Numba operators run in, embedded in the operator runtime. It is the
// interpreter Python nodes run with ($APUS_PYTHON, else python3 on PATH): that interpreter is asked
// for its shared libpython, which is loaded at run time, so operators see the same packages as
// nodes. Linking one libpython at build time would pair one Python's runtime with another's
// packages. Only the few functions below are used, found by name: no Python headers are needed.
import Glibc

typealias PyObject = OpaquePointer

final class EmbeddedPython: @unchecked Sendable {
    /// Loaded once per process, by the first Python or Numba operator (on the loading thread).
    nonisolated(unsafe) private static var loaded: Result<EmbeddedPython, OperatorLoadError>?

    /// The interpreter, started: its GIL released, `apus.operators` imported.
    static func shared() throws(OperatorLoadError) -> EmbeddedPython {
        if loaded == nil {
            do throws(OperatorLoadError) {
                loaded = .success(try EmbeddedPython())
            } catch {
                loaded = .failure(error)
            }
        }
        return try loaded!.get()
    }

    /// The interpreter's program, as operators' messages name it.
    let python: String
    private let library: UnsafeMutableRawPointer
    private let ensureGIL: @convention(c) () -> Int32
    private let releaseGIL: @convention(c) (Int32) -> Void
    private let getAttribute: @convention(c) (PyObject, UnsafePointer<CChar>) -> PyObject?
    private let callObject: @convention(c) (PyObject, PyObject?) -> PyObject?
    private let newTuple: @convention(c) (Int) -> PyObject?
    private let setTupleItem: @convention(c) (PyObject, Int, PyObject) -> Int32
    private let getTupleItem: @convention(c) (PyObject, Int) -> PyObject?
    private let tupleSize: @convention(c) (PyObject) -> Int
    private let fromInt64: @convention(c) (Int64) -> PyObject?
    private let toInt64: @convention(c) (PyObject) -> Int64
    private let fromUTF8: @convention(c) (UnsafePointer<CChar>) -> PyObject?
    private let toUTF8: @convention(c) (PyObject) -> UnsafePointer<CChar>?
    private let decRef: @convention(c) (PyObject?) -> Void
    private let incRef: @convention(c) (PyObject?) -> Void
    private let printError: @convention(c) () -> Void
    private let clearError: @convention(c) () -> Void
    private let errorOccurred: @convention(c) () -> PyObject?
    /// apus.operators, the Python side of operators (python/apus/operators.py).
    private var host: PyObject!

    private init() throws(OperatorLoadError) {
        python = getenv("APUS_PYTHON").map { String(cString: $0) } ?? "python3"
        let facts = try Self.ask(python)
        guard let library = dlopen(facts.library, RTLD_NOW | RTLD_GLOBAL) else {
            throw OperatorLoadError(description: "cannot load \(python)'s libpython '\(facts.library)': \(String(cString: dlerror()))")
        }
        self.library = library
        func symbol<T>(_ name: String, as type: T.Type) throws(OperatorLoadError) -> T {
            guard let address = dlsym(library, name) else {
                throw OperatorLoadError(description: "'\(facts.library)' has no \(name): not a libpython Apus can embed")
            }
            return unsafeBitCast(address, to: type)
        }
        ensureGIL = try symbol("PyGILState_Ensure", as: (@convention(c) () -> Int32).self)
        releaseGIL = try symbol("PyGILState_Release", as: (@convention(c) (Int32) -> Void).self)
        getAttribute = try symbol("PyObject_GetAttrString", as: (@convention(c) (PyObject, UnsafePointer<CChar>) -> PyObject?).self)
        callObject = try symbol("PyObject_CallObject", as: (@convention(c) (PyObject, PyObject?) -> PyObject?).self)
        newTuple = try symbol("PyTuple_New", as: (@convention(c) (Int) -> PyObject?).self)
        setTupleItem = try symbol("PyTuple_SetItem", as: (@convention(c) (PyObject, Int, PyObject) -> Int32).self)
        getTupleItem = try symbol("PyTuple_GetItem", as: (@convention(c) (PyObject, Int) -> PyObject?).self)
        tupleSize = try symbol("PyTuple_Size", as: (@convention(c) (PyObject) -> Int).self)
        fromInt64 = try symbol("PyLong_FromLongLong", as: (@convention(c) (Int64) -> PyObject?).self)
        toInt64 = try symbol("PyLong_AsLongLong", as: (@convention(c) (PyObject) -> Int64).self)
        fromUTF8 = try symbol("PyUnicode_FromString", as: (@convention(c) (UnsafePointer<CChar>) -> PyObject?).self)
        toUTF8 = try symbol("PyUnicode_AsUTF8", as: (@convention(c) (PyObject) -> UnsafePointer<CChar>?).self)
        decRef = try symbol("Py_DecRef", as: (@convention(c) (PyObject?) -> Void).self)
        incRef = try symbol("Py_IncRef", as: (@convention(c) (PyObject?) -> Void).self)
        printError = try symbol("PyErr_Print", as: (@convention(c) () -> Void).self)
        clearError = try symbol("PyErr_Clear", as: (@convention(c) () -> Void).self)
        errorOccurred = try symbol("PyErr_Occurred", as: (@convention(c) () -> PyObject?).self)
        let initialize = try symbol("Py_InitializeEx", as: (@convention(c) (Int32) -> Void).self)
        let isInitialized = try symbol("Py_IsInitialized", as: (@convention(c) () -> Int32).self)
        let saveThread = try symbol("PyEval_SaveThread", as: (@convention(c) () -> OpaquePointer?).self)
        let runString = try symbol(
            "PyRun_SimpleStringFlags", as: (@convention(c) (UnsafePointer<CChar>, OpaquePointer?) -> Int32).self)
        let importModule = try symbol("PyImport_ImportModule", as: (@convention(c) (UnsafePointer<CChar>) -> PyObject?).self)

        // The standard library is where the interpreter has it (a venv's base): PYTHONHOME for the
        // start only, so what operators start does not inherit it. Output unbuffered, as `python3 -u`.
        setenv("PYTHONHOME", facts.home, 1)
        setenv("PYTHONUNBUFFERED", "1", 0)
        initialize(0)  // 0: Python installs no signal handlers; the runtime's stay
        unsetenv("PYTHONHOME")
        guard isInitialized() != 0 else { throw OperatorLoadError(description: "\(python)'s interpreter did not start") }
        // The interpreter's own sys.path (site-packages, a venv's included) and program, as the
        // Python literals it printed them as.
        let setup = "import sys\nsys.path[:] = \(facts.path)\nsys.executable = \(facts.executable)\n"
        if runString(setup, nil) != 0 {
            _ = saveThread()
            throw OperatorLoadError(description: "\(python)'s interpreter cannot be set up (see the traceback above)")
        }
        guard let host = importModule("apus.operators") else {
            printError()
            _ = saveThread()
            throw OperatorLoadError(
                description:
                    "the embedded \(python) cannot import apus.operators (see the traceback above); `apus run` puts it on PYTHONPATH")
        }
        self.host = host
        _ = saveThread()  // the GIL is taken per call from here on
    }

    /// What `python` says of itself: its shared libpython and home, and its executable and
    /// sys.path as Python literals (repr, so any character in a path survives the one line).
    struct Facts {
        var library = ""
        var home = ""
        var executable = ""
        var path = ""
    }

    static let question = """
        import os, sys, sysconfig
        get = sysconfig.get_config_var
        names = [n for n in (get("LDLIBRARY"), get("INSTSONAME")) if n and ".so" in n]
        folders = [f for f in (get("LIBDIR"), os.path.join(sys.base_prefix, "lib")) if f]
        found = [os.path.join(f, n) for n in names for f in folders if os.path.exists(os.path.join(f, n))]
        print("library", found[0] if found else "", sep="\\t")
        print("home", sys.base_prefix + ":" + sys.base_exec_prefix, sep="\\t")
        print("executable", repr(sys.executable), sep="\\t")
        print("path", repr(sys.path), sep="\\t")
        """

    /// Runs `python` once to learn where its libpython is.
    static func ask(_ python: String) throws(OperatorLoadError) -> Facts {
        guard let (status, output) = runCapturing([python, "-c", question]) else {
            throw OperatorLoadError(
                description: "cannot run the Python interpreter '\(python)' (set APUS_PYTHON to one, or put python3 on PATH)")
        }
        var facts = Facts()
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "library": facts.library = parts[1]
            case "home": facts.home = parts[1]
            case "executable": facts.executable = parts[1]
            case "path": facts.path = parts[1]
            default: continue
            }
        }
        guard status == 0, !facts.home.isEmpty, !facts.path.isEmpty, !facts.executable.isEmpty else {
            throw OperatorLoadError(description: "the Python interpreter '\(python)' could not say where its libpython is (exit \(status))")
        }
        guard !facts.library.isEmpty else {
            throw OperatorLoadError(
                description: "\(python) has no shared libpython (it was built without --enable-shared), so operators cannot embed it; "
                    + "point APUS_PYTHON at a Python that has one (Debian's python3 does)")
        }
        return facts
    }

    // MARK: Calls, each with the GIL held

    /// Runs `body` holding the GIL.
    func locked<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        let state = ensureGIL()
        defer { releaseGIL(state) }
        return try body()
    }

    /// One argument of a call.
    enum Argument {
        case int(Int64)
        case text(String)
    }

    /// Calls `function` (an attribute of apus.operators, or of `object`) with `arguments`; the
    /// new reference to the result, or nil with the exception printed. Hold the GIL.
    func call(_ function: String, of object: PyObject? = nil, _ arguments: [Argument]) -> PyObject? {
        guard let callable = getAttribute(object ?? host, function) else {
            printError()
            return nil
        }
        defer { decRef(callable) }
        guard let tuple = newTuple(arguments.count) else { return nil }
        defer { decRef(tuple) }
        for (index, argument) in arguments.enumerated() {
            let item: PyObject?
            switch argument {
            case .int(let value): item = fromInt64(value)
            case .text(let value): item = fromUTF8(value)
            }
            guard let item else {
                printError()
                return nil
            }
            _ = setTupleItem(tuple, index, item)  // takes the reference
        }
        let result = callObject(callable, tuple)
        if result == nil { printError() }
        return result
    }

    /// A bound method of `object`, to call per event without looking it up. Hold the GIL.
    func attribute(_ name: String, of object: PyObject) -> PyObject? {
        let found = getAttribute(object, name)
        if found == nil { clearError() }
        return found
    }

    /// Calls `callable` with one int; its int result, or nil (the exception printed). Hold the GIL.
    func callReturningInt(_ callable: PyObject, _ argument: Int64) -> Int64? {
        guard let tuple = newTuple(1), let item = fromInt64(argument) else { return nil }
        defer { decRef(tuple) }
        _ = setTupleItem(tuple, 0, item)
        guard let result = callObject(callable, tuple) else {
            printError()
            return nil
        }
        defer { decRef(result) }
        return int(result)
    }

    /// Item `index` of tuple `tuple` if it is a str. Hold the GIL.
    func text(_ tuple: PyObject, _ index: Int) -> String? {
        guard index < tupleSize(tuple), let item = getTupleItem(tuple, index) else { return nil }
        guard let value = toUTF8(item) else {
            clearError()
            return nil
        }
        return String(cString: value)
    }

    /// Item `index` of tuple `tuple`, a new reference. Hold the GIL.
    func object(_ tuple: PyObject, _ index: Int) -> PyObject? {
        guard index < tupleSize(tuple), let item = getTupleItem(tuple, index) else { return nil }
        incRef(item)
        return item
    }

    /// Attribute `name` of `object` if it is a str. Hold the GIL.
    func text(_ name: String, of object: PyObject) -> String? {
        guard let value = attribute(name, of: object) else { return nil }
        defer { decRef(value) }
        guard let text = toUTF8(value) else {
            clearError()
            return nil
        }
        return String(cString: text)
    }

    /// Item `index` of tuple `tuple` if it is an int. Hold the GIL.
    func integer(_ tuple: PyObject, _ index: Int) -> Int64? {
        guard index < tupleSize(tuple), let item = getTupleItem(tuple, index) else { return nil }
        return int(item)
    }

    /// `object` as an int, or nil if it is none. Hold the GIL.
    func int(_ object: PyObject) -> Int64? {
        let value = toInt64(object)
        if value == -1, errorOccurred() != nil {
            clearError()
            return nil
        }
        return value
    }

    /// Gives up a reference. Hold the GIL.
    func release(_ object: PyObject?) {
        decRef(object)
    }
}

/// Runs `arguments` (the program found on PATH) and returns its exit status and standard output;
/// nil if it cannot be started. Its standard error goes where the runtime's goes.
func runCapturing(_ arguments: [String]) -> (status: Int32, output: String)? {
    var pipe: [Int32] = [0, 0]
    guard Glibc.pipe(&pipe) == 0 else { return nil }
    for end in pipe { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
    close(pipe[1])
    defer { close(pipe[0]) }
    guard spawned == 0 else { return nil }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(pipe[0], &chunk, chunk.count)
        if count > 0 {
            output += chunk[0..<count]
        } else if count < 0, errno == EINTR {
            continue
        } else {
            break
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    let exited = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exited, String(decoding: output, as: UTF8.self))
}
