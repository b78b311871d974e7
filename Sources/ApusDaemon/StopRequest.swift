// A request, from another thread, that a run stop: what Ctrl-C does, with a reason. A run across
// machines makes one, so that a machine whose part failed, or that was lost, stops the rest rather
// than leave it waiting for what will not come.
import Synchronization

public final class StopRequest: Sendable {
    private let pipe: WakePipe
    private let reason = Mutex<String?>(nil)

    /// The pipe the run's loop polls.
    var fd: Int32 { pipe.fd }

    /// Nil if no pipe could be made (the run then stops as it would without one).
    public init?() {
        guard let pipe = try? WakePipe() else { return nil }
        self.pipe = pipe
    }

    /// Asks the run to stop because of `why`; the first reason is the one told.
    public func request(_ why: String) {
        let first = reason.withLock { reason in
            guard reason == nil else { return false }
            reason = why
            return true
        }
        if first { pipe.ring() }
    }

    /// The reason, once it was requested.
    func take() -> String? {
        pipe.drain()
        return reason.withLock { $0 }
    }
}
