// Small file-system helpers of the daemon and the CLI, on plain system calls.
import ApusTransport
import Glibc

/// A file's text; nil if it cannot be read or is longer than `limit` bytes.
func readTextFile(_ path: String, limit: Int = .max) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        bytes += buffer[0..<count]
        if bytes.count > limit { return nil }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes a file as a whole: a temporary file renamed over `path`.
func replaceFile(_ path: String, _ text: String) -> Bool {
    let temporary = "\(path).\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    let written = writeAll(fd, Array(text.utf8))
    close(fd)
    guard written, rename(temporary, path) == 0 else {
        unlink(temporary)
        return false
    }
    return true
}

/// Creates a new file with `text`; false (errno set) if it exists already or cannot be written.
public func createFile(_ path: String, _ text: String) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return writeAll(fd, Array(text.utf8))
}

/// The names in a folder, without . and ..; nil if it cannot be read.
func listDirectory(_ path: String) -> [String]? {
    guard let directory = opendir(path) else { return nil }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != ".", name != ".." { names.append(name) }
    }
    return names
}

/// `mkdir -p`.
public func mkdirs(_ path: String) -> Bool {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, 0o755) != 0 && errno != EEXIST { return false }
    }
    return true
}
