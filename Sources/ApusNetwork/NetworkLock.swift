import Synchronization

/// A mutex for the little state a participant shares between threads.
final class NetworkLock: Sendable {
    private let mutex = Mutex(())

    func locked<Value, Failure: Error>(_ body: () throws(Failure) -> Value) throws(Failure) -> Value {
        try mutex.withLock { _ throws(Failure) -> Value in try body() }
    }
}
