// A request, from another thread, that a run stop: what Ctrl-C does, with a reason. A run across
// machines makes one, so that a machine whose part failed, or that was lost, stops the rest rather
// than leave it waiting for what will not come.
import CApusSys
import Glibc
import Synchronization

public final class StopRequest: Sendable {
    /// The pipe's read end, which the run's loop polls, and its write end; both non-blocking.
    let fd: Int32
    private let bell: Int32
    private let reason = Mutex<String?>(nil)

    /// Nil if no pipe could be made (the run then stops as it would without one).
    public init?() {
        var ends: [Int32] = [-1, -1]
        guard apussys_pipe(&ends) == 0 else { return nil }
        for end in ends { _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK) }
        fd = ends[0]
        bell = ends[1]
    }

    deinit {
        close(fd)
        close(bell)
    }

    /// Asks the run to stop because of `why`; the first reason is the one told.
    public func request(_ why: String) {
        let first = reason.withLock { reason in
            defer { reason = reason ?? why }
            return reason == nil
        }
        guard first else { return }
        var one: UInt8 = 1
        _ = write(bell, &one, 1)
    }

    /// The reason, once it was requested.
    func take() -> String? {
        var byte: UInt8 = 0
        while read(fd, &byte, 1) > 0 {}
        return reason.withLock { $0 }
    }
}
