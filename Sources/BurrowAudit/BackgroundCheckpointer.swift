import BurrowSQLite
import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `AuditStore.Checkpoints.background`: a thread with its own connection
/// that runs a passive checkpoint whenever the writer's commits have left
/// `pages` or more in the WAL. The writer's commit hook only flags the work
/// and wakes the thread; no commit waits for it.
final class BackgroundCheckpointer: @unchecked Sendable {
    /// The thread's own connection; closed by the thread as it ends.
    private var connection: AuditDatabase?
    private let pages: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var pending = false
    private var stopped = false
    private var ended = false
    private let completed = Atomic<Int>(0)

    var runs: Int { completed.load(ordering: .relaxed) }

    init(path: String, pages: Int) throws(AuditError) {
        let connection = try AuditDatabase(path: path, mode: .readWrite)
        // Whichever connection closes last keeps -wal and -shm for the auditor group's readers.
        connection.persistWriteAheadLog()
        self.connection = connection
        self.pages = max(1, pages)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        do {
            try Kernel.detachedThread { [self] in loop() }
        } catch {
            throw .database("cannot start the audit log's checkpoint thread: \(error)")
        }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// From the writer's commit: the WAL now holds `walPages` pages.
    func walHolds(_ walPages: Int) {
        guard walPages >= pages else { return }
        pthread_mutex_lock(mutex)
        pending = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Ends the thread after the checkpoint it may be running, and returns
    /// once it has ended and closed its connection (the store's writer
    /// then closes last).
    func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        pthread_cond_broadcast(condition)
        while !ended { pthread_cond_wait(condition, mutex) }
        pthread_mutex_unlock(mutex)
    }

    private func loop() {
        pthread_mutex_lock(mutex)
        while true {
            while !pending && !stopped { pthread_cond_wait(condition, mutex) }
            if stopped { break }
            pending = false
            pthread_mutex_unlock(mutex)
            // Passive: what a reader still needs stays in the WAL until the
            // next one; a failure (a full disk) is retried at the next flag.
            if (try? connection?.checkpoint()) != nil { completed.add(1, ordering: .relaxed) }
            pthread_mutex_lock(mutex)
        }
        connection = nil
        ended = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
