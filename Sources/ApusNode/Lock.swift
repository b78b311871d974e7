import Glibc

/// A mutex for the node's few short critical sections. Debug builds remember the holder, so
/// that "the caller holds this lock" is checked (`assertHeld`), not only written in a comment.
final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    #if DEBUG
        private var holder: pthread_t?
    #endif

    init() {
        pthread_mutex_init(mutex, nil)
    }

    func locked<Result: ~Copyable, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        return try holding(body)
    }

    /// Runs `body` holding the lock if it is free; nil, without waiting, if another thread holds it.
    func lockedIfFree<Result>(_ body: () -> Result) -> Result? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        return holding(body)
    }

    /// Runs `body` with the mutex just taken, and lets it go after.
    private func holding<Result: ~Copyable, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        #if DEBUG
            let outer = holder
            holder = pthread_self()
        #endif
        defer {
            #if DEBUG
                holder = outer
            #endif
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }

    /// Checks, in debug builds, that the calling thread holds the lock.
    func assertHeld(file: StaticString = #file, line: UInt = #line) {
        #if DEBUG
            assert(holder.map { pthread_equal($0, pthread_self()) != 0 } ?? false, "the caller must hold this lock", file: file, line: line)
        #endif
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
}

/// Breaks the cycle between a node and the subscriber's pool resolver, which only the node calls.
/// `unowned`, not `weak`: a weak reference gives the node a side table, and every retain and
/// release of the node would then take the slow path.
final class NodeReference: @unchecked Sendable {
    unowned var node: Node?
}
