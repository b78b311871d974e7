import CApusSys
import Glibc

/// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR; a socket whose peer is
/// gone gives EPIPE, never SIGPIPE. Returns 0 or -errno.
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    apussys_write_all(fd, bytes.baseAddress, bytes.count)
}

/// `writeAll` of an array; false on failure, with `errno` set.
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    let result = bytes.withUnsafeBytes { writeAll(fd, $0) }
    if result < 0 { errno = -result }
    return result == 0
}

/// `writeAll` of a string's UTF-8; false on failure, with `errno` set.
@discardableResult
public func writeAll(_ fd: Int32, _ text: String) -> Bool {
    var text = text
    let result = text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    if result < 0 { errno = -result }
    return result == 0
}

/// Writes `text` and a newline with one write where possible, so that the lines of threads
/// writing at once do not interleave.
@discardableResult
public func writeLine(_ fd: Int32, _ text: String) -> Bool {
    writeAll(fd, text + "\n")
}
