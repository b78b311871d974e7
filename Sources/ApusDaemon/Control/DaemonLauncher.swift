import ApusTransport
import CApusSys
import Glibc

/// Starts the background daemon (`apus up`): `apus daemon`, detached from the terminal and the
/// caller's session, with its output appended to the daemon's log.
public enum DaemonLauncher {
    /// Starts `executable daemon ARGUMENTS...` with `environment`; returns its pid.
    public static func launch(
        executable: String, arguments: [String] = [], paths: ControlPaths, environment: [String]
    ) throws(ControlError) -> pid_t {
        try paths.prepare()
        let log = open(paths.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw .system("cannot open \(paths.log)", errno) }
        defer { close(log) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable, "daemon"] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        let pid = apussys_spawn_detached(executable, argv, envp, log)
        guard pid > 0 else { throw .system("cannot start the daemon", -pid) }
        return pid
    }
}
