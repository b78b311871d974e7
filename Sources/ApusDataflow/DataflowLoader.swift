import Foundation
import Yams

/// Reads a dataflow file into a validated `DataflowDescriptor`, or reports every problem in it.
public struct DataflowLoader: Sendable {
    /// Variables used for `$VAR` expansion in env strings and for finding bare commands on `PATH`.
    public var environment: [String: String]
    /// Whether node `path`s must exist. `apus graph` can draw a dataflow whose nodes are not built yet.
    public var checksPaths: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, checksPaths: Bool = true) {
        self.environment = environment
        self.checksPaths = checksPaths
    }

    /// Loads the file at `file` (relative to the current directory or absolute).
    public func load(file: String) throws(DataflowErrors) -> DataflowDescriptor {
        let url = URL(fileURLWithPath: file)
        var status = stat()
        if stat(file, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) > DataflowDescriptor.Limits.fileSize {
            let message = "is \(status.st_size) bytes; a dataflow file may have at most \(DataflowDescriptor.Limits.fileSize >> 20) MiB"
            throw DataflowErrors([DataflowDiagnostic(file: file, line: nil, column: nil, message: message)])
        }
        let yaml: String
        do {
            yaml = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw DataflowErrors([DataflowDiagnostic(file: file, line: nil, column: nil, message: Self.readFailure(file))])
        }
        return try parse(yaml: yaml, file: file, directory: url.deletingLastPathComponent().standardizedFileURL.path)
    }

    /// Parses YAML text as if it were the file `file` in the folder `directory`.
    public func parse(yaml: String, file: String, directory: String) throws(DataflowErrors) -> DataflowDescriptor {
        var parser = DataflowParser(file: file, directory: directory, loader: self)
        let descriptor = parser.parse(yaml)
        if let descriptor, parser.diagnostics.isEmpty { return descriptor }
        throw DataflowErrors(parser.sortedDiagnostics)
    }

    /// Parses a node file (`apus node add`): one node, checked as `apus check` checks a dataflow's
    /// nodes, with inputs that may name the outputs of `running`, the nodes already running.
    public func parseJoiningNode(yaml: String, file: String, directory: String, running: [NodeDescriptor]) throws(DataflowErrors)
        -> NodeDescriptor
    {
        var parser = DataflowParser(file: file, directory: directory, loader: self)
        let node = parser.parseJoining(yaml, running: running)
        if let node, parser.diagnostics.isEmpty { return node }
        throw DataflowErrors(parser.sortedDiagnostics)
    }

    private static func readFailure(_ file: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) {
            return "no such file"
        }
        if isDirectory.boolValue { return "is a folder, not a dataflow file" }
        if !FileManager.default.isReadableFile(atPath: file) { return "cannot be read (permission denied)" }
        return "is not UTF-8 text"
    }
}

/// What the loader found at a node's `path` (the one part of loading that asks the file system).
enum ProgramLookup {
    case found(String)
    /// Not usable: why, and the absolute path it should have been at.
    case problem(String, absolute: String)
}

extension DataflowLoader {
    /// Finds a node's program: `path` against the dataflow folder, or a bare command on PATH.
    /// Python files need not be executable. With `checksPaths` off, or a build step that may make
    /// the program, the path is taken as it is.
    func lookUpProgram(_ path: String, directory: String, isPython: Bool, hasBuild: Bool) -> ProgramLookup {
        let absolute = path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
        guard checksPaths, !hasBuild else { return .found(absolute) }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return .problem("'\(path)' is a folder, not a program ('\(absolute)')", absolute: absolute) }
            if !isPython, !FileManager.default.isExecutableFile(atPath: absolute) {
                return .problem("'\(path)' is not executable ('\(absolute)'; try chmod +x)", absolute: absolute)
            }
            return .found(absolute)
        }
        if !path.contains("/"), let found = searchPATH(path, in: environment["PATH"] ?? "") { return .found(found) }
        let where_ = path.contains("/") ? "looked for '\(absolute)'" : "looked for '\(absolute)' and on PATH"
        return .problem("'\(path)' not found (\(where_))", absolute: absolute)
    }
}

extension DataflowLoader {
    enum LibraryLookup: Equatable {
        case found
        case problem(String)
    }

    /// Whether an operator's library `file` (absolute; `written` as in the file) is there; not
    /// looked for when a build step makes it (the runtime names it if it is still missing).
    func lookUpLibrary(_ file: String, written: String, hasBuild: Bool, what: String = "library") -> LibraryLookup {
        guard checksPaths, !hasBuild else { return .found }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            return .problem("\(what) '\(written)' not found (looked for '\(file)')")
        }
        return isDirectory.boolValue ? .problem("'\(written)' is a folder, not a \(what) ('\(file)')") : .found
    }
}

extension DataflowLoader {
    /// The types a dataflow in `directory` may name: the standard ones and its `types/` folder's.
    func typeLibrary(directory: String) -> (TypeLibrary, [String]) {
        TypeLibrary.load(directory: directory)
    }
}

/// The first executable `command` in the colon-separated folders of `path` (a PATH value).
public func searchPATH(_ command: String, in path: String) -> String? {
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(command)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
