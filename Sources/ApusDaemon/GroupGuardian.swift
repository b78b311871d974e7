import CApusSys
import Glibc

/// A process of its own that kills the nodes' process groups once `apus run` has ended, however
/// it ended: a node's PDEATHSIG kills the node, but not the subprocesses it started.
/// (`apussys_spawn_guardian` says how.)
final class GroupGuardian {
    private let fd: Int32

    /// Starts the guardian.
    init() throws(SpawnFailure) {
        let fd = apussys_spawn_guardian()
        guard fd >= 0 else { throw SpawnFailure(errno: -fd) }
        self.fd = fd
    }

    /// From now on, `group` is killed if `apus run` ends before `forget(group)`.
    func watch(_ group: pid_t) {
        _ = apussys_guard_group(fd, group)
    }

    /// `group` is gone (its leader was reaped and what was left of it killed).
    func forget(_ group: pid_t) {
        _ = apussys_guard_group(fd, -group)
    }

    /// Ends the guardian: the groups still watched are killed.
    deinit {
        close(fd)
    }

    struct SpawnFailure: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot start the process-group guardian: \(String(cString: strerror(errno)))" }
    }
}
