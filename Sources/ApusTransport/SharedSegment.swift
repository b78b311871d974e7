import CApusSys
import Glibc

/// A memfd-backed shared-memory region and this process's mapping of it.
///
/// memfds have no name in /dev/shm: the memory goes away when the last process that maps it or
/// holds its descriptor is gone, whatever way it ended.
public final class SharedSegment: @unchecked Sendable {
    public let fd: Int32
    public let size: Int
    public let base: UnsafeMutableRawPointer
    public let isWritable: Bool

    /// Creates a segment of `size` bytes (rounded up to a page), mapped read-write and pre-faulted.
    public init(name: String, size: Int) throws(TransportError) {
        let fd = try TransportError.check(apussys_memfd_create(name), "memfd_create")
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let rounded = max(pageSize, (size + pageSize - 1) / pageSize * pageSize)
        guard ftruncate(fd, off_t(rounded)) == 0 else {
            let error = errno
            close(fd)
            throw .system(operation: "ftruncate(\(rounded))", errno: error)
        }
        self.base = try Self.mapOrClose(fd: fd, size: rounded, writable: true)
        self.fd = fd
        self.size = rounded
        self.isWritable = true
    }

    /// Maps a segment received from another process and takes ownership of `fd` (closed on
    /// failure too). `writable: false` maps it read-only: writing into it faults. `populate: false`
    /// leaves pages unmapped until touched, for a process that never reads them (the daemon).
    public init(adopting fd: Int32, size: Int, writable: Bool, populate: Bool = true) throws(TransportError) {
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let error = errno
            close(fd)
            throw .system(operation: "fstat", errno: error)
        }
        guard Int(status.st_size) >= size, size > 0 else {
            close(fd)
            throw .corrupted("segment of \(status.st_size) bytes, expected at least \(size)")
        }
        self.base = try Self.mapOrClose(fd: fd, size: size, writable: writable, populate: populate)
        self.fd = fd
        self.size = size
        self.isWritable = writable
    }

    /// Maps `fd`, closing it if that fails, so a failed init leaks no descriptor.
    private static func mapOrClose(fd: Int32, size: Int, writable: Bool, populate: Bool = true) throws(TransportError)
        -> UnsafeMutableRawPointer
    {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        // MAP_POPULATE pre-faults: fresh pages cost ~2.4 µs each on first touch.
        let address = mmap(nil, size, protection, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0)
        guard let address, address != MAP_FAILED else {
            let error = errno
            close(fd)
            throw .system(operation: "mmap(\(size) bytes)", errno: error)
        }
        return address
    }

    /// Forbids every later writable mapping and write, in any process; this mapping stays writable.
    public func sealAgainstWriters() throws(TransportError) {
        _ = try TransportError.check(apussys_memfd_seal_future_write(fd), "fcntl(F_ADD_SEALS)")
    }

    deinit {
        munmap(base, size)
        close(fd)
    }
}
