// A pipe that other threads ring and a poll loop watches: how work from another thread reaches a
// loop that waits in poll (the daemon's mailbox, a run's stop request).
import CApusSys
import Glibc

final class WakePipe: Sendable {
    /// The read end, which the loop polls; both ends are non-blocking.
    let fd: Int32
    private let bell: Int32

    init() throws(ControlError) {
        var ends: [Int32] = [-1, -1]
        let made = apussys_pipe(&ends)
        guard made == 0 else { throw .system("pipe", -made) }
        for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK) }
        fd = ends[0]
        bell = ends[1]
    }

    deinit {
        close(fd)
        close(bell)
    }

    /// Makes `fd` readable (a full pipe already is).
    func ring() {
        var one: UInt8 = 1
        _ = write(bell, &one, 1)
    }

    /// Empties the pipe, once the loop has seen it readable.
    func drain() {
        var bytes = [UInt8](repeating: 0, count: 256)
        while read(fd, &bytes, bytes.count) > 0 {}
    }
}
