import Glibc

/// Where the C API (include/apus.h and the library) is, found next to the running `apus`: an
/// installed prefix (bin/apus, include/apus.h, lib/libapus.so) or a SwiftPM build folder inside
/// the source tree (.build/<config>/apus beside libApusCAPI.so, the header in <tree>/include).
public struct Installation: Sendable, Equatable {
    /// The running `apus` executable.
    public var executable: String
    /// The folder holding apus.h.
    public var includeDirectory: String
    /// The folder holding the library.
    public var libraryDirectory: String
    /// True for an installed prefix, false for a build folder.
    public var isInstalled: Bool
    /// The root of the source tree, for a build folder.
    public var sourceTree: String?

    /// The Python package's sources (python/ in the source tree, share/apus/python when installed).
    var pythonSource: String {
        sourceTree.map { "\($0)/python" } ?? "\(parent(libraryDirectory))/share/apus/python"
    }

    /// Where `apus run` builds the Python package for its Python nodes.
    var pythonCache: String {
        isInstalled ? "\(libraryDirectory)/apus/python" : "\(libraryDirectory)/apus-python"
    }

    /// The program a runtime node runs: it loads the library and hosts the node's operators
    /// (lib/apus/ when installed, beside the library in a build folder).
    public var operatorRuntime: String {
        isInstalled ? "\(libraryDirectory)/apus/apus-operator-runtime" : "\(libraryDirectory)/apus-operator-runtime"
    }

    /// The folder of apusConfig.cmake: lib/cmake/apus when installed, cmake/ in the source tree.
    public var cmakeDirectory: String {
        sourceTree.map { "\($0)/cmake" } ?? "\(libraryDirectory)/cmake/apus"
    }

    /// Compiler flags for a C node: the include path.
    public var cflags: String { "-I\(includeDirectory)" }

    /// Linker flags for a C node. An installed library is found by name and through the rpath; a
    /// build folder's library (named libApusCAPI.so by SwiftPM) is linked by its path.
    public var libs: String {
        isInstalled ? "-L\(libraryDirectory) -lapus -Wl,-rpath,\(libraryDirectory)" : libraryFile
    }

    /// The library itself: libapus.so when installed, SwiftPM's libApusCAPI.so in a build folder.
    var libraryFile: String {
        "\(libraryDirectory)/\(isInstalled ? "libapus.so" : "libApusCAPI.so")"
    }

    /// Finds the header and library for the running executable.
    public static func locate() throws(InstallationError) -> Installation {
        guard let executable = executablePath() else { throw .noExecutablePath }
        return try locate(executable: executable)
    }

    static func locate(executable: String) throws(InstallationError) -> Installation {
        let bin = parent(executable)
        let prefix = parent(bin)
        if exists("\(prefix)/include/apus.h"), exists("\(prefix)/lib/libapus.so") {
            return Installation(
                executable: executable, includeDirectory: "\(prefix)/include", libraryDirectory: "\(prefix)/lib", isInstalled: true,
                sourceTree: nil)
        }
        if exists("\(bin)/libApusCAPI.so") {
            var folder = bin
            while folder != "/" {
                folder = parent(folder)
                if exists("\(folder)/include/apus.h"), exists("\(folder)/Package.swift") {
                    return Installation(
                        executable: executable, includeDirectory: "\(folder)/include", libraryDirectory: bin, isInstalled: false,
                        sourceTree: folder)
                }
            }
        }
        throw .notFound(executable: executable)
    }

    /// The directory of the running executable, for build steps to find this `apus` on PATH.
    public static func executableDirectory() -> String? {
        executablePath().map(parent)
    }

    /// The running executable (from /proc/self/exe).
    public static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

public enum InstallationError: Error, Equatable, CustomStringConvertible {
    case noExecutablePath
    case notFound(executable: String)

    public var description: String {
        switch self {
        case .noExecutablePath:
            return "cannot tell where the running apus is (/proc/self/exe is unreadable)"
        case .notFound(let executable):
            return "no C API next to \(executable): expected ../include/apus.h and ../lib/libapus.so (an installed "
                + "prefix, see scripts/install) or libApusCAPI.so beside it inside the source tree (run `swift build`)"
        }
    }
}

private func parent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

private func exists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}
