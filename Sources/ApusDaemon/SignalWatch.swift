import CApusSys
import Glibc

/// Signals delivered through a signalfd, read in a poll loop: no handler runs, so nothing unsafe
/// happens at signal time. Create it before starting any thread (the signals are blocked in the
/// creating thread, and threads inherit that).
public final class SignalWatch {
    /// Readable when a watched signal is pending.
    public let fd: Int32

    /// Watches `signals`. Each is first reset to its default action: one a parent left ignored
    /// never reaches a signalfd.
    public init(_ signals: [Int32]) throws(SignalWatchError) {
        for watched in signals { signal(watched, SIG_DFL) }
        let fd = signals.withUnsafeBufferPointer { apussys_signalfd($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { throw SignalWatchError(errno: -fd) }
        self.fd = fd
    }

    /// Blocks `signals` in this thread, and so in the threads it starts from now on: for a
    /// process that starts threads (a DDS library's) before it makes its `SignalWatch`, so the
    /// signals are not taken by those threads instead.
    public static func blockInThisThread(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for blocked in signals { sigaddset(&set, blocked) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The next pending signal, without waiting; nil when none is pending.
    public func next() -> Int32? {
        let number = apussys_signalfd_read(fd)
        return number > 0 ? number : nil
    }

    deinit {
        close(fd)
    }
}

public struct SignalWatchError: Error, CustomStringConvertible {
    public let errno: Int32
    public var description: String { "cannot watch signals: \(String(cString: strerror(errno)))" }
}
